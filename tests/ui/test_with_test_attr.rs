#[mproc::test]
#[test]
fn spawns() {}

fn main() {}
