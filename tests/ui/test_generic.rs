#[mproc::test]
fn spawns<T: Default>() {
    drop(T::default());
}

fn main() {}
