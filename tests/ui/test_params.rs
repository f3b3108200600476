#[mproc::test]
fn spawns(n: u64) {
    drop(n);
}

fn main() {}
