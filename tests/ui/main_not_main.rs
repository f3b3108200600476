#[mproc::main]
fn start() {}

fn main() {
    start();
}
