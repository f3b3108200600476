#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() {
    let v: Vec<u64> = vec![1, 2, 3];
    let _ = mproc::par_map!(square, v.iter());
}
