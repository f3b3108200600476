#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() {
    let pool = mproc::Pool::new(2).unwrap();
    let _ = mproc::par_map!(square);
    let _ = mproc::par_map!(pool, square, 0..10u64, 0..10u64);
}
