#[mproc::main]
async fn main() {}
