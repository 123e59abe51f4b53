//! Advice is honest (Linux): what `advise` reports is what happens to the pages, checked in
//! `/proc/self/smaps`, not taken from the return value.
#![cfg(target_os = "linux")]

use mmf::{Advice, Advised, Mapping, ViewOptions};
use mmf_testkit::files::{smaps_field, smaps_kb as kb};
use mmf_testkit::root_for;

const MIB: usize = 1 << 20;
const SHMEM_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// The shmem huge-page policy in force (the word in brackets).
fn shmem_policy() -> String {
    let text = std::fs::read_to_string(SHMEM_ENABLED).unwrap();
    text.split('[').nth(1).unwrap().split(']').next().unwrap().to_owned()
}

/// A 16 MiB view of anonymous (shared) memory at a 2 MiB-aligned address, advised, then
/// faulted in: (what advise said, kB of it mapped with huge pages).
fn advise_and_touch() -> (Advised, u64) {
    let mapping = Mapping::anonymous(16 * MIB as u64).unwrap();
    // An aligned address: reserve 18 MiB, round up, release, then ask for the view there.
    let probe = mapping.view(..).unwrap();
    let aligned = (probe.as_ptr() as usize).next_multiple_of(2 * MIB);
    drop(probe);
    let view = match ViewOptions::new().address(aligned).len(16 * MIB as u64).map_mut(&mapping) {
        Ok(view) => view,
        Err(_) => ViewOptions::new().map_mut(&mapping).unwrap(), // taken meanwhile
    };
    let said = view.advise(Advice::HugePages).unwrap();
    view.populate(0, view.len()).unwrap();
    (said, kb(view.as_ptr(), "ShmemPmdMapped:"))
}

/// Restores the shmem policy when dropped, even if the test fails.
struct Policy(String);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::write(SHMEM_ENABLED, &self.0);
    }
}

#[test]
fn huge_page_advice_on_shared_memory_says_what_happens() {
    if !std::path::Path::new(SHMEM_ENABLED).exists() {
        let view = Mapping::anonymous(4 * MIB as u64).unwrap().view(..).unwrap();
        assert_eq!(view.advise(Advice::HugePages).unwrap(), Advised::NotSupported);
        return;
    }
    // Under the policy in force (`never` by default): consistent with the effect.
    let (said, huge) = advise_and_touch();
    match said {
        Advised::NotSupported => assert_eq!(huge, 0, "reported not applied, yet huge pages"),
        Advised::Applied => assert!(huge > 0, "reported applied, and no huge page: {huge} kB"),
    }
    if !root_for("changing the shmem huge-page policy") {
        return;
    }
    let _restore = Policy(shmem_policy());
    std::fs::write(SHMEM_ENABLED, "never").unwrap();
    assert_eq!(advise_and_touch(), (Advised::NotSupported, 0), "policy never");
    std::fs::write(SHMEM_ENABLED, "advise").unwrap();
    let (said, huge) = advise_and_touch();
    assert_eq!(said, Advised::Applied, "policy advise");
    assert!(huge >= 2048, "policy advise: {huge} kB in huge pages");
}

#[test]
fn dont_dump_keeps_a_view_out_of_core_files() {
    let mapping = Mapping::anonymous(4 * MIB as u64).unwrap();
    let view = mapping.view(..).unwrap();
    let flags = || smaps_field(view.as_ptr(), "VmFlags:");
    assert!(!flags().split(' ').any(|f| f == "dd"), "{}", flags());
    assert_eq!(view.advise(Advice::DontDump).unwrap(), Advised::Applied);
    assert!(flags().split(' ').any(|f| f == "dd"), "{}", flags());
    assert_eq!(view.advise(Advice::DoDump).unwrap(), Advised::Applied);
    assert!(!flags().split(' ').any(|f| f == "dd"), "{}", flags());
}
