#[mproc::main]
fn main(args: Vec<String>) {
    drop(args);
}
