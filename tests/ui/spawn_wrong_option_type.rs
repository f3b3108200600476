#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() {
    let _ = mproc::spawn!(square(3); daemon = "yes");
}
