//! Every diagnostic of mproc's macros: `tests/ui/<case>.rs` must fail to compile with `<case>.stderr`.
//! After an intended change to a message, regenerate with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
