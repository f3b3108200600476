#[mproc::test]
async fn spawns() {}

fn main() {}
