//! Named mutexes, events and semaphores between real processes (nothing shared but the
//! name), their refusals, and the inspector's view of a stuck system.

use std::time::Duration;

use mmf::sync::{
    Liveness, LockError, NamedEvent, NamedMutex, NamedSemaphore, ObjectKind, ResetMode, inspect,
};
use mmf::{Access, Error, Mapping};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

fn play(role: &str, name: &str) {
    match role {
        "hold" => {
            let mutex = NamedMutex::open(name).unwrap();
            let _guard = mutex.lock().unwrap();
            tell("locked");
            hear();
        }
        "signal" => {
            let event = NamedEvent::open(name).unwrap();
            let sem = NamedSemaphore::open(&format!("{name}-sem")).unwrap();
            tell("opened");
            hear();
            sem.semaphore().release(2).unwrap();
            event.event().set().unwrap();
            tell("signalled");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_named_mutex_of_a_killed_owner_gives_owner_died_and_shows_in_the_inspector() {
    const TEST: &str =
        "a_named_mutex_of_a_killed_owner_gives_owner_died_and_shows_in_the_inspector";
    if let Some((role, name)) = role() {
        return play(&role, &name);
    }
    let name = unique_name("sync-mutex");
    let mutex = NamedMutex::create(&name).unwrap();
    drop(mutex.lock().unwrap()); // joined: slot 0 is this process's
    let mut peer = Peer::spawn(TEST, "hold", &name);
    peer.expect("locked");

    let monitor = Mapping::open(&name, Access::ReadOnly).unwrap().view(..).unwrap();
    let info = inspect(&monitor, 0).unwrap();
    let peer_slot = info.participants.iter().find(|p| p.pid == peer.pid()).expect("peer listed");
    assert_eq!(peer_slot.liveness, Liveness::Alive);
    assert_eq!(info.objects.len(), 1);
    assert_eq!(info.objects[0].kind, ObjectKind::Mutex);
    assert_eq!(info.objects[0].holder, Some(peer_slot.slot));
    let slot = peer_slot.slot;
    assert!(matches!(mutex.try_lock(), Err(LockError::WouldBlock)));

    peer.kill();
    let info = inspect(&monitor, 0).unwrap();
    let dead = info.participants.iter().find(|p| p.slot == slot).unwrap();
    assert_eq!(dead.liveness, Liveness::Dead, "the killed holder should show as dead");
    assert_eq!(info.objects[0].holder, Some(slot));

    match mutex.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(inspect(&monitor, 0).unwrap().objects[0].holder, None);
}

#[test]
fn named_events_and_semaphores_cross_processes_by_name() {
    const TEST: &str = "named_events_and_semaphores_cross_processes_by_name";
    if let Some((role, name)) = role() {
        return play(&role, &name);
    }
    let name = unique_name("sync-event");
    let event = NamedEvent::create(&name, ResetMode::Auto, false).unwrap();
    let sem = NamedSemaphore::create(&format!("{name}-sem"), 0, 2).unwrap();
    let mut peer = Peer::spawn(TEST, "signal", &name);
    peer.expect("opened");
    assert!(!event.event().wait_timeout(Duration::from_millis(20)).unwrap());
    peer.say("go");
    assert!(event.event().wait_timeout(Duration::from_secs(10)).unwrap());
    assert!(sem.semaphore().acquire_timeout(Duration::from_secs(10)).unwrap());
    assert!(sem.semaphore().acquire_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(sem.semaphore().count(), 0);
    peer.expect("signalled");
    peer.wait_success();
}

#[test]
fn named_forms_refuse_the_wrong_kind_and_missing_names() {
    let name = unique_name("sync-kinds");
    assert!(matches!(NamedMutex::open(&name), Err(Error::NotFound { .. })));
    let _mutex = NamedMutex::create(&name).unwrap();
    let err = NamedEvent::open(&name).unwrap_err();
    assert!(err.to_string().contains("is a mutex, not an event"), "{err}");
    let err = NamedSemaphore::create(&name, 0, 1).unwrap_err();
    assert!(err.to_string().contains("mutex"), "{err}");
    // A plain named mapping is not a sync object.
    let plain = unique_name("sync-plain");
    let _m = mmf_testkit::create_named(&plain, 4096).unwrap();
    let err = NamedMutex::open(&plain).unwrap_err();
    assert!(matches!(err, Error::SyncArea { .. }), "{err}");
    // ... and opening it by name did not write into it.
    let mut bytes = [1u8; 64];
    Mapping::open(&plain, Access::ReadOnly)
        .unwrap()
        .view(..)
        .unwrap()
        .read_at(0, &mut bytes)
        .unwrap();
    assert_eq!(bytes, [0; 64], "opening a plain mapping as a mutex wrote into it");
    // An event opened by name keeps the mode it was created with.
    let ev = unique_name("sync-mode");
    let _created = NamedEvent::create(&ev, ResetMode::Manual, true).unwrap();
    let opened = NamedEvent::open(&ev).unwrap();
    assert_eq!(opened.event().mode(), ResetMode::Manual);
    assert!(opened.event().is_set());
}

#[test]
fn bytes_a_peer_writes_into_a_named_object_never_make_its_handle_panic() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Object 0's `desc` word: header 64 + 64 participant slots of 32, + 8.
    const DESC: usize = 64 + 64 * 32 + 8;
    let scribble = |name: &str, desc: u64| {
        let raw = Mapping::open(name, Access::ReadWrite).unwrap();
        let view = raw.view_mut(..).unwrap();
        view.get::<AtomicU64>(DESC).unwrap().store(desc, Ordering::SeqCst);
    };
    let quiet = |what: &str, f: &dyn Fn()| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert!(r.is_ok(), "{what} panicked on bytes a peer wrote");
    };
    let name = unique_name("sync-scribble-m");
    let mutex = NamedMutex::create(&name).unwrap();
    scribble(&name, 2 << 32); // "a manual-reset event"
    quiet("NamedMutex::try_lock", &|| drop(mutex.try_lock()));
    quiet("NamedMutex::mutex", &|| assert!(!mutex.mutex().is_inconsistent()));

    let name = unique_name("sync-scribble-e");
    let event = NamedEvent::create(&name, ResetMode::Auto, false).unwrap();
    scribble(&name, 1 << 32); // "a mutex"
    quiet("NamedEvent::event", &|| drop(event.event().set()));

    let name = unique_name("sync-scribble-s");
    let sem = NamedSemaphore::create(&name, 1, 4).unwrap();
    scribble(&name, 99 << 32); // an unknown kind
    quiet("NamedSemaphore::semaphore", &|| assert_eq!(sem.semaphore().count(), 1));
    assert_eq!(sem.semaphore().maximum(), 4);
}

#[test]
fn creating_a_named_object_over_a_plain_data_mapping_refuses_and_writes_nothing() {
    let name = unique_name("sync-collide");
    let data = mmf_testkit::create_named(&name, 1 << 20).unwrap();
    let err = NamedMutex::create(&name).unwrap_err();
    assert!(matches!(err, Error::SyncArea { .. }), "{err}");
    assert!(err.to_string().contains("not a named mutex"), "{err}");
    assert!(NamedEvent::create(&name, ResetMode::Manual, true).is_err());
    assert!(NamedSemaphore::create(&name, 1, 2).is_err());
    let mut bytes = [1u8; 4096];
    data.view(..).unwrap().read_at(0, &mut bytes).unwrap();
    assert_eq!(bytes, [0; 4096], "a sync object was formatted into someone's data mapping");
    // Creating an existing named mutex still opens it.
    let first = unique_name("sync-recreate");
    let a = NamedMutex::create(&first).unwrap();
    let b = NamedMutex::create(&first).unwrap();
    let guard = a.lock().unwrap();
    assert_eq!(b.mutex().owner_slot(), a.mutex().owner_slot());
    drop(guard);
}
