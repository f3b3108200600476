#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() {
    let pool = vec![1, 2];
    let _ = mproc::par_map!(pool, square, 0..10u64);
}
