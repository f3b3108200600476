#[mproc::main(fork)]
fn main() {}
