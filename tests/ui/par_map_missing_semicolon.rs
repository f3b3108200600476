#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() {
    let _ = mproc::par_map!(square, 0..10u64, chunksize = 4);
}
