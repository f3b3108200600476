#[mproc::task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[mproc::main]
fn main() {
    let _ = mproc::par_map!(add, vec![(1, 2, 3), (4, 5, 6)]);
}
