//! `PoolBuilder::build_global`: configures the global pool once, before it is first used. One test
//! only, in a binary of its own: the global pool is per process, so tests sharing it would race.

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::test]
fn build_global_configures_the_global_pool_once() {
    mproc::Pool::builder().processes(3).build_global().unwrap();
    assert_eq!(mproc::global_pool().unwrap().processes(), 3);
    assert_eq!(mproc::par_map!(square, 0..10u64).unwrap(), (0..10u64).map(|n| n * n).collect::<Vec<_>>());
    match mproc::Pool::builder().processes(2).build_global() {
        Err(mproc::Error::Misuse { what }) => assert!(what.contains("before the first par_map!"), "{what}"),
        other => panic!("expected Misuse, got {other:?}"),
    }
    assert_eq!(mproc::global_pool().unwrap().processes(), 3, "the first configuration stays");
}
