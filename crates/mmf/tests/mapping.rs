//! Mapping objects (`CreateFileMapping`): sizes, growth, access, and every refusal.

use std::fs::{File, OpenOptions};

use mmf::{Access, Error, Mapping, MappingOptions, ViewOptions};
use mmf_testkit::{file_with, pattern};

#[test]
fn no_size_means_the_file_size() {
    let (_dir, _path, file) = file_with(10_000, pattern);
    for access in [Access::ReadOnly, Access::ReadWrite, Access::CopyOnWrite] {
        let mapping = Mapping::from_file(&file, access).unwrap();
        assert_eq!(mapping.size(), 10_000);
        assert_eq!(mapping.access(), access);
        let mut buf = vec![0; 10_000];
        mapping.view(..).unwrap().read_at(0, &mut buf).unwrap();
        assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    }
}

#[test]
fn size_past_the_end_grows_a_writable_file_with_zeros() {
    let (_dir, path, file) = file_with(100, pattern);
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file).unwrap();
    assert_eq!(mapping.size(), 1 << 20);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[..100].iter().enumerate().all(|(i, &b)| b == pattern(i)));
    assert!(bytes[100..].iter().all(|&b| b == 0));
}

#[test]
fn size_smaller_than_the_file_limits_views_and_keeps_the_file() {
    let (_dir, path, file) = file_with(10_000, pattern);
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10_000);
    assert!(mapping.view(4096..).unwrap().is_empty(), "an empty view at the end");
    assert!(matches!(mapping.view(4097..), Err(Error::OutOfRange { size: 4096, .. })));
    assert!(matches!(mapping.view(4000..4097), Err(Error::OutOfRange { size: 4096, .. })));
    assert_eq!(mapping.view(..).unwrap().len(), 4096);
}

#[test]
fn the_mapping_keeps_its_own_handle_to_the_file() {
    let (_dir, path, file) = file_with(8192, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    drop(file);
    mapping.view_mut(10..20).unwrap().write_at(0, b"after-drop").unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[10..20], b"after-drop");
}

#[test]
fn anonymous_mappings_are_zero_filled_and_shared_by_their_views() {
    let mapping = Mapping::anonymous(3 * 4096 + 5).unwrap();
    assert_eq!(mapping.size(), 3 * 4096 + 5);
    let view = mapping.view(..).unwrap();
    let mut buf = vec![1; view.len()];
    view.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    mapping.view_mut(4096..).unwrap().write_at(1, b"anon").unwrap();
    let mut got = [0; 4];
    view.read_at(4097, &mut got).unwrap();
    assert_eq!(&got, b"anon");
}

#[test]
fn dropping_the_mapping_leaves_views_valid() {
    let (_dir, path, file) = file_with(3 * 4096, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(5000..).unwrap();
    drop(mapping); // CloseHandle
    drop(file);
    view.write_at(0, b"still mapped").unwrap();
    view.flush().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[5000..5012], b"still mapped");
}

// ---- bad input: each refusal is a precise error with a message that says what to do ----

#[test]
fn empty_file_without_size_is_refused() {
    let file = tempfile::tempfile().unwrap();
    let err = Mapping::from_file(&file, Access::ReadWrite).unwrap_err();
    assert!(matches!(err, Error::EmptyFile), "{err:?}");
    assert!(err.to_string().contains("give a size"), "{err}");
    let err = MappingOptions::new().access(Access::ReadWrite).size(0).map_file(&file).unwrap_err();
    assert!(matches!(err, Error::EmptyFile), "{err:?}");
}

#[test]
fn size_past_the_end_of_a_read_only_file_is_refused() {
    let (_dir, path, _file) = file_with(100, pattern);
    let ro = File::open(&path).unwrap();
    for access in [Access::ReadOnly, Access::CopyOnWrite] {
        let err = MappingOptions::new().access(access).size(200).map_file(&ro).unwrap_err();
        assert!(
            matches!(err, Error::SizePastEnd { size: 200, file_len: 100, .. }),
            "{access}: {err:?}"
        );
        assert!(err.to_string().contains("map at most 100 bytes"), "{err}");
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100, "the file must not change");
}

#[test]
fn read_write_mapping_of_a_read_only_file_is_refused() {
    let (_dir, path, _file) = file_with(4096, pattern);
    let ro = File::open(&path).unwrap();
    let err = Mapping::from_file(&ro, Access::ReadWrite).unwrap_err();
    assert!(matches!(err, Error::FileNotWritable), "{err:?}");
    assert!(err.to_string().contains("open it with write access"), "{err}");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    // Read-only and copy-on-write mappings of it are fine.
    Mapping::from_file(&ro, Access::ReadOnly).unwrap();
    Mapping::from_file(&ro, Access::CopyOnWrite).unwrap();
}

#[test]
fn write_only_file_is_refused() {
    let (_dir, path, _file) = file_with(4096, pattern);
    let wo = OpenOptions::new().write(true).open(&path).unwrap();
    let err = Mapping::from_file(&wo, Access::ReadWrite).unwrap_err();
    assert!(matches!(err, Error::FileNotReadable), "{err:?}");
}

/// A handle to a directory: plain `open` on Linux; on Windows only with
/// `FILE_FLAG_BACKUP_SEMANTICS`.
fn open_directory(path: &std::path::Path) -> File {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(
        &mut options,
        windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS,
    );
    options.open(path).unwrap()
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let handle = open_directory(dir.path());
    let err = Mapping::from_file(&handle, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::IsDirectory), "{err:?}");
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn sizes_larger_than_the_address_space_are_refused() {
    let (_dir, _path, file) = file_with(10, pattern);
    let err =
        MappingOptions::new().access(Access::ReadWrite).size(u64::MAX).map_file(&file).unwrap_err();
    assert!(matches!(err, Error::TooLarge { size: u64::MAX }), "{err:?}");
    assert_eq!(std::fs::metadata(_path).unwrap().len(), 10, "the file must not grow");
    let err = Mapping::anonymous(u64::MAX).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    // A sparse object of 4 EiB can exist, but a view of all of it cannot fit: refused
    // when mapping, with the same error.
    // On Linux a sparse object of 4 EiB can exist, but a view of all of it cannot fit:
    // refused when mapping, with the same error. Windows charges a pagefile-backed mapping
    // against the commit limit when it is created, so there creation itself is refused.
    let huge = Mapping::anonymous(1 << 62);
    #[cfg(unix)]
    {
        let huge = huge.unwrap();
        let err = huge.view(..).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("address space"), "{err}");
        assert_eq!(huge.view((1 << 62) - 10..).unwrap().len(), 10);
    }
    #[cfg(windows)]
    {
        let err = huge.unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    }
}

#[test]
fn anonymous_mapping_of_zero_bytes_is_refused() {
    let err = Mapping::anonymous(0).unwrap_err();
    assert!(matches!(err, Error::ZeroSize), "{err:?}");
}

#[test]
fn errors_convert_to_io_errors_with_their_message() {
    let file = tempfile::tempfile().unwrap();
    let io: std::io::Error = Mapping::from_file(&file, Access::ReadOnly).unwrap_err().into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    assert!(io.to_string().contains("give a size"));
}

#[test]
fn read_write_view_of_a_read_only_mapping_is_refused() {
    let (_dir, _path, file) = file_with(4096, pattern);
    for access in [Access::ReadOnly, Access::CopyOnWrite] {
        let mapping = Mapping::from_file(&file, access).unwrap();
        let err = mapping.view_mut(..).unwrap_err();
        assert!(matches!(err, Error::AccessDenied { view: "read-write", .. }), "{err:?}");
        assert!(err.to_string().contains("read-write access"), "{err}");
        mapping.view(..).unwrap();
        mapping.view_copy(..).unwrap();
    }
    let err = ViewOptions::new().map_mut(&Mapping::from_file(&file, Access::ReadOnly).unwrap());
    assert!(err.is_err());
}
