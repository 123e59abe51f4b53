//! The hostile review of 2026-12-01, round 9 (heap format 3: slots with gaps). Buckets
//! damaged against the slot rules and resealed (their checksums hold, so only the rules
//! can catch them): an entry far from its home past a gap, hashes out of order, a taken
//! slot emptied, a key held twice, counts and depths that disagree, keys outside the node.
//! Every look-up answers the right value, none, or an error (the fast path exactly where
//! the checked one does); `verify` flags each; writes over them do not panic.

use super::tests::{compare, image, nodes, roots};
use super::*;
use crate::entries::{KeyMode, Layout};
use crate::{Heap, HeapOptions, MemoryBackend, PStr};

fn ord(b: &[u8], l: &Layout, i: usize) -> u64 {
    u64::from_be_bytes(b[l.ord_pos(i)..][..8].try_into().unwrap())
}

fn set_ord(b: &mut [u8], l: &Layout, i: usize, o: u64) {
    b[l.ord_pos(i)..][..8].copy_from_slice(&o.to_be_bytes());
}

/// Copies slot `from`'s ord, aux and value over slot `to`.
fn copy_slot(b: &mut [u8], l: &Layout, from: usize, to: usize) {
    b.copy_within(l.ord_pos(from)..l.ord_pos(from) + 8, l.ord_pos(to));
    b.copy_within(l.aux_pos(from)..l.aux_pos(from) + 8, l.aux_pos(to));
    b.copy_within(l.val_pos(from)..l.val_pos(from) + l.vsize, l.val_pos(to));
}

fn clear(b: &mut [u8], l: &Layout, i: usize) {
    b[l.ord_pos(i)..][..8].fill(0);
    b[l.aux_pos(i)..][..8].fill(0);
    b[l.val_pos(i)..][..l.vsize].fill(0);
}

fn set_count(b: &mut [u8], n: u32) {
    b[12..16].copy_from_slice(&n.to_le_bytes());
}

type Damage = fn(&mut [u8], &Layout, u32) -> Option<()>;

/// The damages, each a violation of one rule of `docs/heap-format.md` ("Hash map"); `None`
/// where a bucket has no place for it.
fn damages() -> Vec<(&'static str, Damage)> {
    vec![
        ("an entry moved up past a gap", |b, l, used| {
            let taken = |i: usize| ord(b, l, i) != 0;
            let i = (0..l.cap - 2).find(|&i| {
                taken(i)
                    && !taken(i + 1)
                    && !taken(i + 2)
                    && slots::home(ord(b, l, i), used, l.cap) <= i
            })?;
            copy_slot(b, l, i, i + 2);
            clear(b, l, i);
            Some(())
        }),
        ("an entry moved down past a gap", |b, l, used| {
            let taken = |i: usize| ord(b, l, i) != 0;
            let i = (2..l.cap).find(|&i| {
                taken(i)
                    && !taken(i - 1)
                    && !taken(i - 2)
                    && slots::home(ord(b, l, i), used, l.cap) >= i
            })?;
            copy_slot(b, l, i, i - 2);
            clear(b, l, i);
            Some(())
        }),
        ("an entry moved to the far end", |b, l, _| {
            let first = (0..l.cap).find(|&i| ord(b, l, i) != 0)?;
            let last = (0..l.cap).rev().find(|&i| ord(b, l, i) == 0)?;
            (last > first).then_some(())?;
            copy_slot(b, l, first, last);
            clear(b, l, first);
            Some(())
        }),
        ("two neighbours' hashes swapped", |b, l, _| {
            let i = (0..l.cap - 1).find(|&i| {
                ord(b, l, i) != 0 && ord(b, l, i + 1) != 0 && ord(b, l, i) != ord(b, l, i + 1)
            })?;
            let (x, y) = (ord(b, l, i), ord(b, l, i + 1));
            set_ord(b, l, i, y);
            set_ord(b, l, i + 1, x);
            Some(())
        }),
        ("two neighbours' entries swapped", |b, l, _| {
            let i = (0..l.cap - 1).find(|&i| {
                ord(b, l, i) != 0 && ord(b, l, i + 1) != 0 && ord(b, l, i) != ord(b, l, i + 1)
            })?;
            let spare = (0..l.cap).find(|&s| ord(b, l, s) == 0)?;
            copy_slot(b, l, i, spare);
            copy_slot(b, l, i + 1, i);
            copy_slot(b, l, spare, i + 1);
            clear(b, l, spare);
            Some(())
        }),
        ("two keys swapped", |b, l, _| {
            let i = (0..l.cap - 1).find(|&i| ord(b, l, i) != 0 && ord(b, l, i + 1) != 0)?;
            let (x, y) = (l.aux_pos(i), l.aux_pos(i + 1));
            let (kx, ky) = (b[x..x + 8].to_vec(), b[y..y + 8].to_vec());
            b[x..x + 8].copy_from_slice(&ky);
            b[y..y + 8].copy_from_slice(&kx);
            Some(())
        }),
        ("a taken slot in a run emptied", |b, l, _| {
            let i = (1..l.cap - 1).find(|&i| (i - 1..=i + 1).all(|s| ord(b, l, s) != 0))?;
            set_ord(b, l, i, 0);
            Some(())
        }),
        ("an entry held twice (over its neighbour)", |b, l, _| {
            let i = (0..l.cap - 1).find(|&i| ord(b, l, i) != 0 && ord(b, l, i + 1) != 0)?;
            copy_slot(b, l, i, i + 1);
            Some(())
        }),
        ("a hash without its tag bit", |b, l, _| {
            let i = (0..l.cap).find(|&i| ord(b, l, i) != 0)?;
            let o = ord(b, l, i);
            set_ord(b, l, i, o & !1);
            Some(())
        }),
        ("the last entry copied into the first free slot", |b, l, _| {
            let last = (0..l.cap).rev().find(|&i| ord(b, l, i) != 0)?;
            let free = (0..last).find(|&i| ord(b, l, i) == 0)?;
            copy_slot(b, l, last, free);
            clear(b, l, last);
            Some(())
        }),
        ("count one more", |b, _, _| {
            set_count(b, node::header(b).ok()?.count + 1);
            Some(())
        }),
        ("count one less", |b, _, _| {
            set_count(b, node::header(b).ok()?.count - 1);
            Some(())
        }),
        ("count the capacity", |b, l, _| {
            // Not a damage in a bucket that is full (the file's seed makes one now and then).
            (node::header(b).ok()?.count != l.cap as u32).then_some(())?;
            set_count(b, l.cap as u32);
            Some(())
        }),
        ("count over the capacity", |b, l, _| {
            set_count(b, l.cap as u32 + 1);
            Some(())
        }),
        ("depth one more", |b, _, _| {
            b[6] += 1;
            Some(())
        }),
        ("depth one less", |b, _, _| {
            b[6] = b[6].checked_sub(1)?;
            Some(())
        }),
        ("a key past the node's end", |b, l, _| {
            (l.mode == KeyMode::Heap).then_some(())?;
            let i = (0..l.cap).find(|&i| ord(b, l, i) != 0)?;
            let aux = (l.size as u64 - 3) | 8 << 32;
            b[l.aux_pos(i)..][..8].copy_from_slice(&aux.to_le_bytes());
            Some(())
        }),
        ("a key in the value array", |b, l, _| {
            (l.mode == KeyMode::Heap).then_some(())?;
            let i = (0..l.cap).find(|&i| ord(b, l, i) != 0)?;
            let aux = (l.heap_min() as u64 - 4) | 8 << 32;
            b[l.aux_pos(i)..][..8].copy_from_slice(&aux.to_le_bytes());
            Some(())
        }),
    ]
}

/// Every read and write of the maps of `image` (damaged in one bucket): look-ups answer
/// their own value, none, or an error, the fast path exactly where the checked one does;
/// `verify` of the damaged map fails; iteration and writes do not panic.
fn exercise(image: Vec<u8>, map: &str, what: &str) -> bool {
    let heap = Heap::open_with(MemoryBackend::from_bytes(image), &HeapOptions::new()).unwrap();
    let ints = || (0..3100u64).map(Box::new);
    let strs = || (0..1600u64).map(|k| Box::<str>::from(format!("key {k}")));
    compare::<u64, u64>(&heap, "h", ints());
    compare::<PStr, u64>(&heap, "s", strs());
    let snap = heap.read().unwrap();
    let h: PHashMap<u64, u64> = snap.root("h").unwrap().unwrap();
    let s: PHashMap<PStr, u64> = snap.root("s").unwrap().unwrap();
    for k in 0..3100u64 {
        if let Ok(Some(v)) = h.get(&snap, &k) {
            assert_eq!(*v, k * 7 + 1, "{what}: h key {k} answered another's value");
        }
        if let Ok(Some(v)) = s.get(&snap, &format!("key {k}")) {
            assert_eq!(*v, k * 7 + 1, "{what}: s key {k} answered another's value");
        }
    }
    // Iteration ends (or errs) without a panic.
    assert!(h.iter(&snap).take(10_000).count() < 10_000);
    assert!(s.iter(&snap).take(10_000).count() < 10_000);
    let flagged = match map {
        "h" => h.verify(&snap).is_err(),
        _ => s.verify(&snap).is_err(),
    };
    drop(snap);
    let mut tx = heap.write().unwrap();
    let (mut h2, mut s2) = (h, s);
    for k in 2900..6000u64 {
        let _ = h2.insert(&mut tx, &k, &(k * 7 + 1));
        let _ = s2.insert(&mut tx, &format!("key {k}"), &(k * 7 + 1));
    }
    for k in 0..6000u64 {
        let _ = h2.remove(&mut tx, &k);
        let _ = s2.remove(&mut tx, &format!("key {k}"));
    }
    flagged
}

#[test]
fn hostile_slots_are_flagged_and_never_answer_another_keys_value() {
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let snap = heap.read().unwrap();
    let h = snap.root::<PHashMap<u64, u64>>("h").unwrap().unwrap();
    let s = snap.root::<PHashMap<PStr, u64>>("s").unwrap().unwrap();
    h.verify(&snap).unwrap();
    s.verify(&snap).unwrap();
    let maps = [
        ("h", h.h.root, PHashMap::<u64, u64>::S.leaf),
        ("s", s.h.root, PHashMap::<PStr, u64>::S.leaf),
    ];
    drop(snap);
    let (mut applied, mut passed) = (0, Vec::new());
    for (map, root, l) in maps {
        for node in nodes(&image, root).into_iter().skip(1) {
            for (what, damage) in damages() {
                let mut bad = image.clone();
                let b = &mut bad[node..node + l.size];
                let used = u32::from(b[6]);
                if damage(b, &l, used).is_none() {
                    continue;
                }
                node::seal(b);
                applied += 1;
                if !exercise(bad, map, what) {
                    passed.push(format!("{map} bucket {node}: {what}"));
                }
            }
        }
    }
    assert!(applied >= 30, "{applied} damages applied");
    assert!(passed.is_empty(), "verify passed: {passed:#?}");
}

/// A bucket of layout `l`, empty.
fn bucket(l: &Layout) -> Vec<u8> {
    let mut b = vec![0u8; l.size];
    let h = node::header_mut(&mut b);
    (h.size, h.heap, h.width) = (l.size as u32, l.size as u32, l.vsize as u32);
    b
}

/// The slot rules (`docs/heap-format.md`, "Hash map") of bucket `b` holding `model`
/// (tag to value byte), and every key of the model found with its value.
fn check_rules(
    b: &[u8],
    l: &Layout,
    used: u32,
    model: &std::collections::BTreeMap<u64, u8>,
    key: &dyn Fn(u64) -> Vec<u8>,
    find_all: bool,
) {
    let e = Entries::slots(b, *l, 0).unwrap();
    let taken: Vec<usize> = slots::occupied(&e).collect();
    assert_eq!(taken.len(), model.len());
    assert_eq!(node::header(b).unwrap().count as usize, model.len());
    let ords: Vec<u64> = taken.iter().map(|&i| e.ord(i)).collect();
    assert!(ords.windows(2).all(|w| w[0] < w[1]), "hash order");
    for &i in &taken {
        let h = slots::home(e.ord(i), used, l.cap);
        assert!((i.min(h)..=i.max(h)).all(|s| e.ord(s) != 0), "slot {i} joined to home {h}");
        assert_eq!(e.key(i).unwrap(), key(e.ord(i)), "slot {i}'s key");
    }
    for (&o, &v) in model.iter().filter(|_| find_all) {
        let i = slots::find(&e, &key(o), o, used).unwrap().expect("found");
        assert!(e.val(i).iter().all(|&x| x == v), "value of {o:x}");
    }
}

/// The slot operations in layouts the unit test of `slots` does not cover: values of 0,
/// 3 and 1000 bytes, keys in the key heap (compacted as they come and go) and 4-byte keys
/// in the aux word; hashes spread or crowded at either end or both (entries then sit far
/// below or above their homes, against the bucket's ends), with 0, 5, 63 and 64 bits
/// used (63: every home the middle slot; 64: every home slot 0); refilled as a split or
/// merge does after every few steps.
#[test]
fn slot_operations_keep_the_rules_in_every_layout() {
    use std::collections::{BTreeMap, BTreeSet};
    let layouts = [
        Layout::new(KeyMode::InAux(8), 0, 0),
        Layout::new(KeyMode::InAux(4), 3, 0),
        Layout::new(KeyMode::Heap, 8, 0),
        Layout::new(KeyMode::Heap, 1000, 0),
        Layout::new(KeyMode::Heap, 0, 0),
    ];
    for l in layouts {
        let key = move |o: u64| -> Vec<u8> {
            match l.mode {
                KeyMode::InAux(w) => o.to_le_bytes()[..w].to_vec(),
                _ => format!("{o:x}{}", "z".repeat((o % 61) as usize)).into_bytes(),
            }
        };
        for used in [0u32, 5, 63, 64] {
            for crowd in 0..5u64 {
                let mut x = (crowd * 64 + used as u64 + l.cap as u64).wrapping_mul(0x9e37_79b9) | 1;
                let mut rand = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let span = u64::MAX.checked_shr(used).unwrap_or(0);
                let n = 3 * l.cap + 10;
                let tags: Vec<u64> = (0..n)
                    .map(|_| {
                        let r = rand();
                        slots::tag(match crowd {
                            0 => r.checked_shr(used).unwrap_or(0),
                            1 => r % 3000,
                            2 => span.saturating_sub(r % 3000),
                            3 if r & 1 == 0 => r % 3000,
                            3 => span.saturating_sub(r % 3000),
                            _ => span / 3 + r % 100,
                        })
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let (mut b, mut model) = (bucket(&l), BTreeMap::new());
                for step in 0..1200u64 {
                    let r = rand();
                    let o = tags[(r % tags.len() as u64) as usize];
                    let v = vec![step as u8; l.vsize];
                    let e = Entries::slots(&b, l, 0).unwrap();
                    match slots::find(&e, &key(o), o, used).unwrap() {
                        Ok(i) if r >> 60 < 7 => {
                            slots::remove(&mut b, &l, i, used);
                            model.remove(&o);
                        }
                        Ok(i) => {
                            slots::set_val(&mut b, &l, i, &v);
                            model.insert(o, step as u8);
                        }
                        Err(at) if slots::make_room(&mut b, &l, key(o).len(), 0).unwrap() => {
                            assert!(slots::insert(&mut b, &l, at, o, &key(o), &v));
                            model.insert(o, step as u8);
                        }
                        Err(_) => {
                            let e = Entries::slots(&b, l, 0).unwrap();
                            let heap = slots::heap_used(&e) + key(o).len();
                            assert!(
                                model.len() == l.cap || heap > l.size - l.heap_min(),
                                "refused with {} entries and room",
                                model.len()
                            );
                        }
                    }
                    check_rules(&b, &l, used, &model, &key, step % 8 == 0);
                    if step % 50 == 0 {
                        // Refilled in two parts (a merge) at the same bits.
                        let e = Entries::slots(&b, l, 0).unwrap();
                        let taken: Vec<usize> = slots::occupied(&e).collect();
                        let half = taken.len() / 2;
                        let mut refilled = bucket(&l);
                        let parts = [(&e, taken[..half].to_vec()), (&e, taken[half..].to_vec())];
                        slots::fill(&mut refilled, &l, used, &parts).unwrap();
                        check_rules(&refilled, &l, used, &model, &key, true);
                        b = refilled;
                    }
                }
            }
        }
    }
}

/// Directories whose pointers disagree with their buckets' depths (a run cut short, a
/// slot sent to another bucket, every slot to one bucket, a bucket's run moved off its
/// alignment): the fast path's guess of the depth (`depth_in_dir`) is then wrong, which
/// must change only the lines it asks for, never the answer. Every look-up answers its
/// own value, none, or an error, exactly as the checked path does.
#[test]
fn a_wrong_guess_of_the_depth_changes_no_answer() {
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let roots = roots(&heap);
    let ptr = |b: &[u8], dir: usize, i: usize| {
        u64::from_le_bytes(b[dir + HDR + 8 * i..][..8].try_into().unwrap())
    };
    let set = |b: &mut [u8], dir: usize, i: usize, p: u64| {
        b[dir + HDR + 8 * i..][..8].copy_from_slice(&p.to_le_bytes());
    };
    let mut cases = 0;
    for (map, root) in roots {
        let dir = (root & !DIR_TAG) as usize;
        let mut damaged: Vec<Vec<u8>> = Vec::new();
        for s in [0usize, 1, 77, 128, 254, 255] {
            // One slot sent to its neighbour's bucket, or to a bucket far away.
            for other in [s ^ 1, s ^ 2, s ^ 64, 255 - s] {
                let mut bad = image.clone();
                let p = ptr(&bad, dir, other);
                set(&mut bad, dir, s, p);
                damaged.push(bad);
            }
        }
        // Every slot to one bucket (guessed depth 0 everywhere).
        let mut bad = image.clone();
        let p = ptr(&bad, dir, 5);
        (0..SLOTS).for_each(|i| set(&mut bad, dir, i, p));
        damaged.push(bad);
        // The pointers rotated by one slot: every run off its alignment.
        let mut bad = image.clone();
        let ptrs: Vec<u64> = (0..SLOTS).map(|i| ptr(&image, dir, i)).collect();
        (0..SLOTS).for_each(|i| set(&mut bad, dir, i, ptrs[(i + 1) % SLOTS]));
        damaged.push(bad);
        for mut bad in damaged {
            node::seal(&mut bad[dir..dir + DIR_SIZE]);
            cases += 1;
            let heap =
                Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new()).unwrap();
            let snap = heap.read().unwrap();
            match map {
                "h" => {
                    compare::<u64, u64>(&heap, map, (0..3000u64).map(Box::new));
                    let m = snap.root::<PHashMap<u64, u64>>(map).unwrap().unwrap();
                    for k in 0..3000u64 {
                        if let Ok(Some(v)) = m.get(&snap, &k) {
                            assert_eq!(*v, k * 7 + 1, "key {k}");
                        }
                    }
                }
                _ => {
                    let keys = (0..1500u64).map(|k| Box::<str>::from(format!("key {k}")));
                    compare::<PStr, u64>(&heap, map, keys);
                    let m = snap.root::<PHashMap<PStr, u64>>(map).unwrap().unwrap();
                    for k in 0..1500u64 {
                        if let Ok(Some(v)) = m.get(&snap, &format!("key {k}")) {
                            assert_eq!(*v, k * 7 + 1, "key {k}");
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 40);
}

/// Random damage to the slot arrays of buckets, resealed: words of `ord` and `aux` set
/// to a random value, to a neighbour's, or to 0, a few at a time. Every look-up answers
/// its own value, none, or an error (the fast path exactly where the checked one does),
/// and nothing panics or hangs (whether `verify` notices depends on what changed).
#[test]
fn random_slot_damage_never_panics_or_answers_another_keys_value() {
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let snap = heap.read().unwrap();
    let maps = [
        (
            "h",
            snap.root::<PHashMap<u64, u64>>("h").unwrap().unwrap().h.root,
            PHashMap::<u64, u64>::S.leaf,
        ),
        (
            "s",
            snap.root::<PHashMap<PStr, u64>>("s").unwrap().unwrap().h.root,
            PHashMap::<PStr, u64>::S.leaf,
        ),
    ];
    drop(snap);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut flagged = 0;
    for (map, root, l) in maps {
        for node in nodes(&image, root).into_iter().skip(1) {
            for _ in 0..12 {
                let mut bad = image.clone();
                let b = &mut bad[node..node + l.size];
                for _ in 0..1 + rand() % 3 {
                    let i = (rand() % l.cap as u64) as usize;
                    let at = if rand() & 1 == 0 { l.ord_pos(i) } else { l.aux_pos(i) };
                    let word = match rand() % 4 {
                        0 => 0,
                        1 => rand(),
                        2 => u64::from_le_bytes(b[at + 8..at + 16].try_into().unwrap()),
                        _ => u64::from_le_bytes(b[at - 8..at].try_into().unwrap()),
                    };
                    b[at..at + 8].copy_from_slice(&word.to_le_bytes());
                }
                node::seal(b);
                flagged += usize::from(exercise(bad, map, "random damage"));
            }
        }
    }
    assert!(flagged > 0);
}
