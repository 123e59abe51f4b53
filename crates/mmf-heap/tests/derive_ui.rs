//! What `#[derive(Persist)]` refuses, at compile time, with the error it gives
//! (`tests/ui/*.stderr`; `TRYBUILD=overwrite` rewrites them after a deliberate change).
//! Linux only: the derive is the same everywhere, and the Windows leg runs its tests
//! under Wine, where no compiler runs.
#![cfg(not(windows))]

#[test]
fn the_derive_refuses_what_cannot_be_persisted() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
