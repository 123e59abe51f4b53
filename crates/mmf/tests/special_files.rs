//! Files that are not regular files: `mmf::file::open` never waits for a FIFO, `FileKind`
//! tells what a handle is, `map_file` refuses what cannot be mapped with an error naming
//! the kind, and block devices map with the device's size.

use std::fs::OpenOptions;

use mmf::{Access, Error, FileKind, Mapping, MappingOptions};

#[test]
fn a_regular_file_is_regular_and_mappable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let (file, kind) = mmf::file::open(&path, OpenOptions::new().read(true)).unwrap();
    assert_eq!(kind, FileKind::Regular);
    assert_eq!(mmf::file::len(&file, kind).unwrap(), 10);
    assert_eq!(Mapping::from_file(&file, Access::ReadOnly).unwrap().size(), 10);
    let missing = mmf::file::open(dir.path().join("missing"), OpenOptions::new().read(true));
    assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn the_kinds_name_themselves() {
    assert_eq!(FileKind::CharDevice.to_string(), "a character device");
    assert_eq!(FileKind::Pseudo { file_system: "sysfs" }.to_string(), "a sysfs pseudo-file");
    let err = Error::NotMappable { kind: FileKind::Fifo };
    assert_eq!(
        err.to_string(),
        "a FIFO (named pipe) cannot be mapped: it is a stream, with no size and no pages to \
         map; read it as a stream (read(2)) instead, or map a regular file or a block device"
    );
    let kinds = [FileKind::Regular, FileKind::BlockDevice];
    assert!(kinds.iter().all(|k| k.is_mappable()));
    let streams = [FileKind::Directory, FileKind::CharDevice, FileKind::Fifo, FileKind::Socket];
    assert!(streams.iter().all(|k| !k.is_mappable()));
}

#[test]
fn an_empty_object_is_called_empty() {
    let empty = Error::TooSmall { name: "x".into(), size: 0, asked: 1 };
    assert!(empty.to_string().starts_with("the object \"x\" is empty (0 bytes)"), "{empty}");
    assert!(!empty.to_string().contains("at most 0"));
    let small = Error::TooSmall { name: "x".into(), size: 10, asked: 20 };
    assert!(small.to_string().contains("ask for at most 10 bytes"), "{small}");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    /// Runs `f` on a thread and fails if it has not returned within a few seconds (the
    /// thread may stay blocked; the test binary ends anyway).
    fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what} blocks"))
    }

    #[test]
    fn a_fifo_opens_at_once_and_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for write in [false, true] {
            let path = fifo.clone();
            let (file, kind) = within("opening a FIFO with no writer", move || {
                mmf::file::open(&path, OpenOptions::new().read(true).write(write)).unwrap()
            });
            assert_eq!(kind, FileKind::Fifo);
            let err = MappingOptions::new().size(4096).map_file(&file).unwrap_err();
            assert!(matches!(err, Error::NotMappable { kind: FileKind::Fifo }), "{err:?}");
            assert!(err.to_string().starts_with("a FIFO (named pipe) cannot be mapped"));
        }
        // With no writer, reading is the end of the stream at once, not a wait.
        let path = fifo.clone();
        let read = within("reading a FIFO with no writer", move || {
            let (file, _) = mmf::file::open(&path, OpenOptions::new().read(true)).unwrap();
            std::io::Read::read(&mut &file, &mut [0; 16]).unwrap()
        });
        assert_eq!(read, 0);
    }

    #[test]
    fn devices_pseudo_files_and_directories_are_refused_by_name() {
        let cases: [(&str, FileKind, &str); 4] = [
            ("/dev/null", FileKind::CharDevice, "a character device cannot be mapped"),
            ("/proc/version", FileKind::Pseudo { file_system: "procfs" }, "a procfs pseudo-file"),
            (
                "/sys/devices/system/cpu/online",
                FileKind::Pseudo { file_system: "sysfs" },
                "a sysfs pseudo-file cannot be mapped: the kernel makes its content",
            ),
            ("/", FileKind::Directory, "a directory cannot be mapped"),
        ];
        for (path, expected, message) in cases {
            let (file, kind) = mmf::file::open(path, OpenOptions::new().read(true)).unwrap();
            assert_eq!(kind, expected, "{path}");
            assert_eq!(mmf::file::kind(&file).unwrap(), expected);
            // Before: "give a size to grow the file", then "ftruncate: Invalid argument".
            let err = MappingOptions::new().size(4096).map_file(&file).unwrap_err();
            assert!(err.to_string().starts_with(message), "{path}: {err}");
        }
        let dev_zero = File::open("/dev/zero").unwrap();
        let err = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(4096)
            .map_file(&dev_zero)
            .unwrap_err();
        assert!(matches!(err, Error::NotMappable { kind: FileKind::CharDevice }), "{err:?}");
    }

    #[test]
    fn a_socket_cannot_even_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let result = within("opening a socket", move || {
            mmf::file::open(&p, OpenOptions::new().read(true)).map(|_| ())
        });
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ENXIO));
    }

    /// A loop device over a file, detached on drop.
    struct LoopDevice(String);

    impl LoopDevice {
        fn over(file: &Path) -> Option<LoopDevice> {
            let out =
                Command::new("losetup").arg("--find").arg("--show").arg(file).output().ok()?;
            let dev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && !dev.is_empty()).then_some(LoopDevice(dev))
        }
    }

    impl Drop for LoopDevice {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }

    #[test]
    fn a_block_device_maps_with_the_devices_size_and_cannot_grow() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
        std::fs::write(&image, &data).unwrap();
        let Some(device) = LoopDevice::over(&image) else {
            eprintln!("skipped: no loop device could be set up (needs root, /dev/loop-control)");
            return;
        };
        let (file, kind) =
            mmf::file::open(&device.0, OpenOptions::new().read(true).write(true)).unwrap();
        assert_eq!(kind, FileKind::BlockDevice);
        assert_eq!(file.metadata().unwrap().len(), 0, "st_size says nothing");
        assert_eq!(mmf::file::len(&file, kind).unwrap(), 1 << 20);
        assert_eq!(mmf::cache::data_ranges(&file).unwrap(), vec![(0..1 << 20)]);

        let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
        assert_eq!(mapping.size(), 1 << 20);
        let mut buf = vec![0; 1000];
        mapping.view(..).unwrap().read_at(500_000, &mut buf).unwrap();
        assert_eq!(buf, data[500_000..501_000]);

        let err = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(2 << 20)
            .map_file(&file)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::CannotGrow { size: 0x20_0000, len: 0x10_0000, kind: FileKind::BlockDevice }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("which a mapping cannot grow: map at most 1048576"));
        let rw = MappingOptions::new().access(Access::ReadWrite).map_file(&file).unwrap();
        let view = rw.view_mut(4096..8192).unwrap();
        view.write_at(0, b"through the device").unwrap();
        // The device node lives on devtmpfs, but its pages are the disk's: a real flush.
        let before = mmf_testkit::durability::page_cache(&file, 0, 0);
        assert!(before.dirty > 0, "the write should dirty the device's page: {before:?}");
        assert_eq!(view.flush().unwrap(), mmf::Flushed::Durable);
        let after = mmf_testkit::durability::page_cache(&file, 0, 0);
        assert!(after.clean(), "the flush left the device's pages dirty: {after:?}");
        let mut back = [0; 18];
        std::os::unix::fs::FileExt::read_exact_at(&File::open(&device.0).unwrap(), &mut back, 4096)
            .unwrap();
        assert_eq!(&back, b"through the device");
    }

    #[test]
    fn populate_past_a_truncated_end_is_truncated_not_bad_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(1 << 20).unwrap();
        let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
        let view = mapping.view(4096..).unwrap();
        view.populate(0, 8192).unwrap();
        file.set_len(65536).unwrap();
        // Bytes 0..61440 of the view are inside the file, the rest past its end.
        view.populate(0, 61440).unwrap();
        let err = view.populate(100_000, 200_000).unwrap_err();
        assert!(matches!(err, Error::Truncated { offset: 100_000, len: 200_000 }), "{err:?}");
        assert!(err.to_string().contains("truncated under the view"), "{err}");
    }
}

#[cfg(windows)]
#[test]
fn the_nul_device_is_a_character_device_and_is_refused() {
    let (file, kind) = mmf::file::open("NUL", OpenOptions::new().read(true)).unwrap();
    assert_eq!(kind, FileKind::CharDevice);
    let err = MappingOptions::new().size(4096).map_file(&file).unwrap_err();
    assert!(matches!(err, Error::NotMappable { kind: FileKind::CharDevice }), "{err:?}");
}
