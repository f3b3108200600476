#[mproc::task]
struct Square(u64);

fn main() {}
