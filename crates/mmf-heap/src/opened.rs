//! The heap files this process has open, by lock area name, so that a process has one
//! [`Readers`] (one participant of the area, one presence lock) per heap file however
//! many `Heap`s of it it opens.
//!
//! **`fork`.** A child forked (without `exec`) from a multithreaded process has only the
//! forking thread; a lock another thread held at the fork stays locked in the child for
//! ever. So the list's lock is held only for a look or a change of the list, never across
//! a system call, and `pthread_atfork` handlers take it before the fork and give it back
//! on both sides, so no fork falls inside a change. Opening a heap (joining its lock area,
//! taking the presence lock: system calls, up to 0.2 s when refused) happens with the
//! list unlocked, the name marked *opening* by this fork generation meanwhile; a child
//! counts an opening left by its parent's threads as not there (those threads do not run
//! in it), and opens the heap itself. An entry the parent had open is shared by the child,
//! as the child shares the parent's `Heap`s. (CI once saw a child wait for ever here:
//! the list had been locked across the whole open.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::error::Result;
use crate::lock::Readers;

enum Entry {
    /// A thread of this process, in fork generation `.0`, is opening it.
    Opening(u64),
    Open(Weak<Readers>),
}

type List = Vec<(String, Entry)>;

static OPEN: Mutex<List> = Mutex::new(Vec::new());

/// Bumped in each fork child (see the module's comment).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Registers the `fork` handlers (once): before a lock area or an outside reader's
/// handle exists, so that [`generation`] tells a child's copies of them.
pub(crate) fn register_fork_handlers() {
    #[cfg(unix)]
    fork::register();
}

/// This process's fork generation, as far as heaps go: 0, plus one per `fork` since the
/// program was loaded (the handlers are registered then, `fork::REGISTER_AT_LOAD`).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

fn list() -> MutexGuard<'static, List> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's `Readers` of the lock area `name`: the one already open, else one
/// `make` opens (with the list unlocked; a thread opening the same name meanwhile waits
/// for it, and gets it).
pub(crate) fn shared(
    name: &str,
    make: impl FnOnce() -> Result<Arc<Readers>>,
) -> Result<Arc<Readers>> {
    register_fork_handlers();
    let generation = loop {
        let generation = GENERATION.load(Ordering::Relaxed);
        let mut open = list();
        open.retain(|(_, e)| match e {
            Entry::Open(r) => r.strong_count() > 0,
            // Left by a thread of the parent process, which does not run here.
            Entry::Opening(g) => *g == generation,
        });
        match open.iter().find(|(n, _)| n == name).map(|(_, e)| e) {
            Some(Entry::Open(r)) => {
                if let Some(r) = r.upgrade() {
                    return Ok(r);
                }
                // Its last `Heap` went after the `retain`: open it again.
                open.retain(|(n, _)| n != name);
            }
            Some(Entry::Opening(_)) => {
                drop(open);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            None => {}
        }
        open.push((name.to_owned(), Entry::Opening(generation)));
        break generation;
    };
    // Whatever happens (an error, a panic), the mark goes: another thread waits for it.
    let mark = Mark { name, generation };
    let readers = make()?;
    let mut open = list();
    if let Some(e) = open.iter_mut().find(|(n, e)| n == name && mark.is(e)) {
        e.1 = Entry::Open(Arc::downgrade(&readers));
    } else {
        open.push((name.to_owned(), Entry::Open(Arc::downgrade(&readers))));
    }
    std::mem::forget(mark);
    Ok(readers)
}

/// Removes the *opening* mark of `name` unless forgotten.
struct Mark<'a> {
    name: &'a str,
    generation: u64,
}

impl Mark<'_> {
    fn is(&self, e: &Entry) -> bool {
        matches!(e, Entry::Opening(g) if *g == self.generation)
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        list().retain(|(n, e)| !(n == self.name && self.is(e)));
    }
}

#[cfg(unix)]
mod fork {
    use std::cell::UnsafeCell;
    use std::sync::atomic::Ordering;
    use std::sync::{MutexGuard, Once};

    use super::{GENERATION, List, list};

    /// The list's lock, held by the forking thread across `fork`: put here by `prepare`,
    /// taken back by `parent` (or, in the child, by `child`) in the same thread. A static,
    /// not a thread-local: a fork from a thread-local's destructor found it destroyed, and
    /// `prepare` panicked (abort) in any program that linked mmf-heap (review 51).
    struct Held(UnsafeCell<Option<MutexGuard<'static, List>>>);

    // SAFETY: only the thread that holds `OPEN` touches the slot (`prepare` after taking
    // the lock, `parent`/`child` before giving it back, in that thread or in the child's
    // copy of it), so never two threads at once; the guard is dropped by the thread that
    // took it.
    unsafe impl Sync for Held {}

    static HELD: Held = Held(UnsafeCell::new(None));

    // Registered when the program is loaded, before `main` (as mmf's
    // own, `sys/fork.rs` there): glibc runs no `child` handler of a handler registered
    // while another thread is inside `fork`, and such a child kept its parent's generation.
    // The call on first use stays, as a no-op.
    #[cfg(target_os = "linux")]
    #[used]
    #[unsafe(link_section = ".init_array")]
    static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

    #[cfg(target_os = "linux")]
    extern "C" fn register_at_load() {
        register();
    }

    pub(super) fn register() {
        static ONCE: Once = Once::new();
        // SAFETY: registers three `extern "C"` functions that take and give back the
        // list's lock in the forking thread; they touch nothing else but an atomic.
        ONCE.call_once(|| unsafe {
            libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
        });
    }

    extern "C" fn prepare() {
        let guard = list();
        // SAFETY: this thread holds `OPEN` (see `Held`); the slot is empty (the last
        // holder's `parent` or `child` emptied it before giving the lock back).
        unsafe { *HELD.0.get() = Some(guard) };
    }

    /// Gives back the lock `prepare` put in the slot.
    fn give_back() {
        // SAFETY: this thread holds `OPEN` (its `prepare` ran): see `Held`.
        drop(unsafe { (*HELD.0.get()).take() });
    }

    extern "C" fn parent() {
        give_back();
    }

    extern "C" fn child() {
        GENERATION.fetch_add(1, Ordering::Relaxed);
        // The forking thread's lock, copied into the child, given back by the same thread.
        give_back();
    }
}

/// A lock that a `fork` child can take over: its word holds the fork generation (plus
/// one) of the thread that holds it, so a child finding it held by its parent's thread
/// (which does not run in it) takes it, and starts from a fresh value, leaving the
/// copied one (perhaps half changed) unread. For what every process shares per heap file
/// ([`Readers`]' pins): a child forked while another thread of its parent pinned a
/// snapshot waited for ever at its own first read (review 49: 34 of 60 children, two
/// threads reading). Held only for a few instructions or one non-blocking system call,
/// so waiters spin with `yield`.
pub(crate) struct GenLock<T: Default> {
    word: AtomicU64,
    /// The generation (plus one) the value belongs to, and the value.
    value: std::cell::UnsafeCell<(u64, T)>,
}

// SAFETY: the value is reached only through a `GenGuard`, one at a time (the word), and
// moves between threads as `T: Send` allows.
unsafe impl<T: Default + Send> Sync for GenLock<T> {}

impl<T: Default> GenLock<T> {
    pub(crate) fn new(value: T) -> GenLock<T> {
        register_fork_handlers();
        GenLock {
            word: AtomicU64::new(0),
            value: std::cell::UnsafeCell::new((generation() + 1, value)),
        }
    }

    pub(crate) fn lock(&self) -> GenGuard<'_, T> {
        let me = generation() + 1;
        let mut held = 0;
        while let Err(now) =
            self.word.compare_exchange_weak(held, me, Ordering::Acquire, Ordering::Relaxed)
        {
            // Free (0), or held by a thread of an older generation: one that does not
            // run in this process (generations only grow, and only in a fork child).
            held = if now == 0 || now < me { now } else { 0 };
            if held == 0 {
                std::thread::yield_now();
            }
        }
        let cell = self.value.get();
        // SAFETY: this thread holds the word, so nothing else reaches the value; the
        // generation is a plain integer, whole in any copy. A fork child's first lock
        // writes a fresh value over its parent's without reading or dropping it (a thread
        // of the parent may have been changing it: it may not be a valid `T`).
        unsafe {
            if (*cell).0 != me {
                std::ptr::addr_of_mut!((*cell).1).write(T::default());
                (*cell).0 = me;
            }
        }
        GenGuard { lock: self, _value: std::marker::PhantomData }
    }
}

/// Holds a [`GenLock`]. Never hold one across a `fork` made by the same thread: the
/// child would take the lock over while its copy of the guard still reaches the value.
pub(crate) struct GenGuard<'a, T: Default> {
    lock: &'a GenLock<T>,
    /// `Sync` only where `T` is, `Send` never (as `MutexGuard`).
    _value: std::marker::PhantomData<(&'a mut T, *const ())>,
}

impl<T: Default> std::ops::Deref for GenGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &(*self.lock.value.get()).1 }
    }
}

impl<T: Default> std::ops::DerefMut for GenGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and is borrowed mutably.
        unsafe { &mut (*self.lock.value.get()).1 }
    }
}

impl<T: Default> Drop for GenGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.word.store(0, Ordering::Release);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use mmf_testkit::forked::{ForkEnd, in_forked_child};
    use mmf_testkit::roles::{plays, run_alone};

    use super::generation;

    /// A fresh process that forks before it opens a heap: the child must count a new
    /// generation, which only the `child` handler does (registered on first use, nothing
    /// was registered yet, and the child counted 0).
    #[test]
    fn fork_handlers_are_registered_before_first_use() {
        if plays("heap-fork-at-load") {
            assert_eq!(generation(), 0);
            let end = in_forked_child(10, || assert_eq!(generation(), 1, "no fork counted"));
            assert_eq!(end, ForkEnd::Fine, "the child counted no fork");
            return;
        }
        run_alone(
            "opened::tests::fork_handlers_are_registered_before_first_use",
            "heap-fork-at-load",
        );
    }
}
