#[mproc::task(name = "sq")]
fn square(n: u64) -> u64 {
    n * n
}

fn main() {}
