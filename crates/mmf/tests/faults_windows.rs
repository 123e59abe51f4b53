//! Windows (under Wine): a file that a Linux process truncates under a Windows view raises
//! an access violation at the access; the guarded copies turn it into `Error::Truncated`
//! and the process lives. (Windows itself refuses to truncate a mapped file; real in-page
//! I/O errors take the same path with `EXCEPTION_IN_PAGE_ERROR`.)
#![cfg(windows)]

use mmf::{Access, Error, Mapping};

/// The directory where `scripts/test-windows.sh` runs a Linux helper that truncates
/// `NAME` to 4096 bytes when `NAME.request` appears, then renames it to `NAME.done` (a
/// Windows program under Wine cannot start a Linux one with the handles it needs).
const TRUNCATOR: &str = "Z:\\tmp\\mmf-wine-truncator";

#[test]
fn a_file_truncated_by_a_linux_process_gives_truncated() {
    let dir = std::path::Path::new(TRUNCATOR);
    assert!(
        dir.is_dir(),
        "{TRUNCATOR} is missing: run this test through scripts/test-windows.sh, which starts \
         the Linux truncator"
    );
    let path = dir.join(format!("data-{}", std::process::id()));
    std::fs::write(&path, vec![5u8; 64 * 4096]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    let mut buf = vec![0u8; 64 * 4096];
    view.read_at(0, &mut buf).unwrap();
    let request = path.with_extension("request");
    std::fs::write(&request, b"").unwrap();
    let done = path.with_extension("done");
    let start = std::time::Instant::now();
    while !done.exists() {
        assert!(start.elapsed().as_secs() < 20, "the Linux truncator did not answer");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = view.read_at(0, &mut buf).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
    let mut word = [0u8; 8];
    assert!(matches!(view.read_at(8192, &mut word), Err(Error::Truncated { .. })));
    view.read_at(0, &mut buf[..4096]).unwrap(); // the page that is left still reads
    drop((view, file));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&done);
}
