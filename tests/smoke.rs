use mproc::StartMethod;

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::test]
fn smoke_all_methods() {
    for m in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        let t = std::time::Instant::now();
        let p = mproc::spawn!(square(7); start_method = m).unwrap();
        assert_eq!(p.join().unwrap(), 49, "{m:?}");
        eprintln!("{m:?}: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let p = mproc::spawn!(square(8); start_method = m).unwrap();
        assert_eq!(p.join().unwrap(), 64, "{m:?}");
        eprintln!("{m:?} again: {:?}", t.elapsed());
    }
}
