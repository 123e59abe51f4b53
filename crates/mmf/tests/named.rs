//! Named mappings between real processes: create/open, lifetime (also after SIGKILL),
//! security, file-backed names, listing. Children are this test binary re-run in a role.

use std::time::{Duration, Instant};

use mmf::{Access, CreationMode, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, create_named, hear, role, tell, unique_name};

fn create(name: &str, size: u64) -> Mapping {
    create_named(name, size).unwrap()
}

/// The size an opener learns of a pagefile-backed object: exact on Linux; Windows keeps
/// such sections in whole pages and reports that.
fn opened_size(size: u64) -> u64 {
    if cfg!(windows) { size.next_multiple_of(mmf::page_size() as u64) } else { size }
}

fn read(mapping: &Mapping, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    mapping.view(..).unwrap().read_at(offset, &mut buf).unwrap();
    buf
}

/// Whether the name can still be opened.
fn exists(name: &str) -> bool {
    match Mapping::open(name, Access::ReadOnly) {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(e) => panic!("open {name}: {e}"),
    }
}

fn wait_gone(name: &str) {
    let start = Instant::now();
    while exists(name) {
        assert!(start.elapsed() < Duration::from_secs(10), "{name} outlived its holders");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn create_in_one_process_open_in_another_writes_both_ways() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "opener");
        let mapping = Mapping::open(&name, Access::ReadWrite).unwrap();
        assert!(!mapping.created());
        tell(&format!("size {}", mapping.size()));
        tell(&format!("read {}", String::from_utf8(read(&mapping, 5000, 11)).unwrap()));
        mapping.view_mut(9000..).unwrap().write_at(0, b"from child").unwrap();
        tell("wrote");
        return;
    }
    let name = unique_name("both-ways");
    let mapping = create(&name, 10_000);
    assert!(mapping.created());
    assert_eq!(mapping.name(), Some(name.as_str()));
    mapping.view_mut(..).unwrap().write_at(5000, b"from parent").unwrap();
    let mut child =
        Peer::spawn("create_in_one_process_open_in_another_writes_both_ways", "opener", &name);
    assert_eq!(child.expect("size"), opened_size(10_000).to_string());
    assert_eq!(child.expect("read"), "from parent");
    child.expect("wrote");
    child.wait_success();
    assert_eq!(read(&mapping, 9000, 10), b"from child");
}

#[test]
fn the_last_holder_takes_the_name_with_it_even_after_sigkill() {
    if let Some((role, name)) = role() {
        match role.as_str() {
            "creator" => {
                let mapping = create(&name, 4096);
                mapping.view_mut(..).unwrap().write_at(0, b"survives").unwrap();
                tell("ready");
                hear(); // killed here
                unreachable!("the creator is killed while it waits");
            }
            "opener" => {
                let mapping = Mapping::open(&name, Access::ReadOnly).unwrap();
                let view = mapping.view(..).unwrap();
                drop(mapping); // the view alone keeps the object alive
                tell("opened");
                hear();
                let mut buf = [0; 8];
                view.read_at(0, &mut buf).unwrap();
                tell(&format!("read {}", String::from_utf8_lossy(&buf)));
                hear();
                // Exit without running destructors: only the kernel releases the hold.
                std::process::exit(0);
            }
            other => panic!("unknown role {other}"),
        }
    }
    let test = "the_last_holder_takes_the_name_with_it_even_after_sigkill";
    let name = unique_name("sigkill");
    let mut creator = Peer::spawn(test, "creator", &name);
    creator.expect("ready");
    let mut opener = Peer::spawn(test, "opener", &name);
    opener.expect("opened");
    creator.kill();
    assert!(exists(&name), "the opener still holds it");
    opener.say("read");
    assert_eq!(opener.expect("read"), "survives");
    assert!(exists(&name));
    opener.say("exit");
    opener.wait_success();
    wait_gone(&name);
}

#[test]
fn dropping_the_last_mapping_and_view_removes_the_name_at_once() {
    let name = unique_name("drop");
    let mapping = create(&name, 4096);
    let view = mapping.view(..).unwrap();
    drop(mapping);
    assert!(exists(&name), "a view keeps it alive");
    let other = Mapping::open(&name, Access::ReadOnly).unwrap();
    drop(view);
    assert!(exists(&name), "another holder keeps it alive");
    drop(other);
    assert!(!exists(&name), "gone with its last holder, without waiting");
}

/// `MMF_SOAK_CYCLES` raises the count (default 200).
#[test]
#[cfg(target_os = "linux")]
fn many_create_then_sigkill_cycles_leave_dev_shm_as_it_was() {
    if let Some((_, name)) = role() {
        let _mapping = create(&name, 65_536);
        tell("ready");
        hear();
        unreachable!("killed while it waits");
    }
    let prefix = format!("mmf-test-soak-{}-", std::process::id());
    let ours = || -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    };
    assert!(ours().is_empty());
    let cycles: usize =
        std::env::var("MMF_SOAK_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let test = "many_create_then_sigkill_cycles_leave_dev_shm_as_it_was";
    for i in 0..cycles {
        let mut child = Peer::spawn(test, "creator", &format!("{prefix}{}", i % 7));
        child.expect("ready");
        child.kill();
    }
    let start = Instant::now();
    while !ours().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "left behind: {:?}", ours());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn create_new_refuses_an_existing_name_and_open_existing_a_missing_one() {
    let name = unique_name("exists");
    let _first = create(&name, 4096);
    let err = create_named(&name, 4096).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    // OpenOrCreate opens it.
    let again = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(100)
        .name(&name)
        .map_anonymous()
        .unwrap();
    assert!(!again.created());
    assert_eq!(again.size(), opened_size(4096));
    let missing = unique_name("missing");
    // OpenExisting through the create path opens only, never creates.
    let err = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(100)
        .name(&missing)
        .creation(CreationMode::OpenExisting)
        .map_anonymous()
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Mapping::open(&missing, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("create it first"), "{err}");
    // OpenOrCreate on a missing name creates it.
    let made = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(100)
        .name(&missing)
        .map_anonymous()
        .unwrap();
    assert!(made.created());
}

#[test]
fn an_opener_asking_for_more_than_there_is_is_refused() {
    let name = unique_name("small");
    let _m = create(&name, 10_000);
    let err =
        MappingOptions::new().access(Access::ReadOnly).size(20_000).open_named(&name).unwrap_err();
    assert!(matches!(err, Error::TooSmall { asked: 20_000, .. }), "{err:?}");
    assert!(err.to_string().contains("less than the 20000 asked for"), "{err}");
    MappingOptions::new().access(Access::ReadOnly).size(10_000).open_named(&name).unwrap();
}

#[test]
fn bad_names_are_refused_before_reaching_the_os() {
    for bad in ["", "a/b", "../x", ".hidden", "with space"] {
        let err = Mapping::open(bad, Access::ReadOnly).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err:?}");
    }
    let err = MappingOptions::new().size(10).name("bad/name").map_anonymous().unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
}

#[test]
fn a_files_mapping_is_opened_by_its_name_alone() {
    if let Some((_, name)) = role() {
        let mapping = Mapping::open(&name, Access::ReadWrite).unwrap();
        tell(&format!("size {}", mapping.size()));
        tell(&format!("read {}", String::from_utf8(read(&mapping, 70_000, 9)).unwrap()));
        let view = mapping.view_mut(..).unwrap();
        view.write_at(100, b"child").unwrap();
        // Windows: the opener has no handle to the file, and still flushes its view
        // (FlushViewOfFile); Linux: the opener opened the file and msyncs it.
        view.flush().unwrap();
        tell("flushed");
        return;
    }
    let (_dir, path, file) = mmf_testkit::file_with(100_000, |_| b'.');
    std::fs::write(&path, [vec![b'.'; 70_000], b"file data".to_vec(), vec![b'.'; 30_000]].concat())
        .unwrap();
    let name = unique_name("file");
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .name(&name)
        .creation(CreationMode::CreateNew)
        .map_file(&file)
        .unwrap();
    assert!(mapping.created());
    let mut child = Peer::spawn("a_files_mapping_is_opened_by_its_name_alone", "opener", &name);
    assert_eq!(child.expect("size"), "100009", "a file's mapping has the file's size");
    assert_eq!(child.expect("read"), "file data");
    child.expect("flushed");
    child.wait_success();
    assert_eq!(read(&mapping, 100, 5), b"child");
    let mut buf = [0; 5];
    mmf_testkit::read_file_at(&file, 100, &mut buf);
    assert_eq!(&buf, b"child", "the child's write reached the file");
    drop(mapping);
    assert!(!exists(&name));
    assert!(path.exists(), "the file outlives its name");
}

#[test]
#[cfg(target_os = "linux")]
fn list_shows_live_objects_with_size_and_owner() {
    let name = unique_name("list");
    let mapping = create(&name, 12_345);
    let listed = mmf::named::list().unwrap();
    let entry = listed.iter().find(|o| o.name == name).expect("listed");
    assert_eq!(entry.size, 12_345);
    // SAFETY: geteuid cannot fail.
    assert_eq!(entry.owner, Some(unsafe { libc::geteuid() }));
    assert_eq!(entry.backing, mmf::named::Backing::Pagefile);
    drop(mapping);
    assert!(!mmf::named::list().unwrap().iter().any(|o| o.name == name));
}

#[test]
fn remove_takes_the_name_but_holders_keep_their_views() {
    let name = unique_name("remove");
    let mapping = create(&name, 4096);
    let view = mapping.view_mut(..).unwrap();
    match mmf::named::remove(&name) {
        Ok(()) => {
            assert!(!exists(&name));
            view.write_at(0, b"still works").unwrap();
            let err = mmf::named::remove(&name).unwrap_err();
            assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        }
        // Windows names live exactly as long as their handles: nothing to remove.
        #[cfg(windows)]
        Err(Error::Unsupported { .. }) => {}
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_kept_object_outlives_its_holders_until_removed() {
    let name = unique_name("kept");
    let made = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(4096)
        .name(&name)
        .creation(CreationMode::CreateNew)
        .keep(true)
        .map_anonymous();
    #[cfg(windows)]
    {
        let err = made.unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("holds the mapping"), "{err}");
    }
    #[cfg(unix)]
    {
        made.unwrap().view_mut(..).unwrap().write_at(0, b"kept").unwrap();
        assert_eq!(read(&Mapping::open(&name, Access::ReadOnly).unwrap(), 0, 4), b"kept");
        let listed = mmf::named::list().unwrap();
        assert!(listed.iter().any(|o| o.name == name && o.kept), "{listed:?}");
        mmf::named::remove(&name).unwrap();
        assert!(!exists(&name));
    }
}
