//! Collections nested in collections, as an application keeps them: a map from names to
//! vectors of records that hold strings (`PMap<PStr, PVec<Record>>`), and a hash map of
//! ordered maps — built over transactions, read in place, changed, freed, reopened.

use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Heap, HeapOptions, PBytes, PHashMap, PMap, PStr, PVec};

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Record {
    id: u64,
    qty: i64,
    note: PStr,
}
mmf_heap::persist!(Record { id: u64, qty: i64, note: PStr });

type Index = PMap<PStr, PVec<Record>>;
/// The index as a model: name → [(id, qty, note)].
type Model = Vec<(String, Vec<(u64, i64, String)>)>;

fn open(path: &std::path::Path) -> Heap {
    // SAFETY: only this test writes the file.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

/// What the index holds, copied out: name → [(id, qty, note)].
fn read_all(heap: &Heap) -> Model {
    let snap = heap.read().unwrap();
    let index: Index = snap.root("index").unwrap().unwrap();
    index.verify(&snap).unwrap();
    let mut out = Vec::new();
    for entry in index.iter(&snap) {
        let (name, records) = entry.unwrap();
        records.verify(&snap).unwrap();
        let records = records
            .iter(&snap)
            .map(|r| {
                let r = r.unwrap();
                // The note, borrowed from the mapping.
                let note: &str = snap.str_ref(r.note).unwrap();
                (r.id, r.qty, note.to_owned())
            })
            .collect();
        out.push((name.to_owned(), records));
    }
    out
}

#[test]
fn a_map_of_vectors_of_records_with_strings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.heap");
    let heap = open(&path);
    let names = ["bolts", "nuts", "washers", "screws"];
    let mut model: Model = names.iter().map(|n| (n.to_string(), Vec::new())).collect();
    model.sort();
    // Records arrive over many transactions, each appended to its name's vector.
    for t in 0..40u64 {
        let mut tx = heap.write().unwrap();
        let mut index: Index = tx.root("index").unwrap().unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            if (t + i as u64) % 3 == 0 {
                continue;
            }
            let mut records = index.get(&tx, name).unwrap().copied().unwrap_or_default();
            let text = format!("{name} batch {t}");
            let note = tx.str(&text).unwrap();
            let id = t * 10 + i as u64;
            records.push(&mut tx, &Record { id, qty: t as i64 - 20, note }).unwrap();
            index.insert(&mut tx, name, &records).unwrap();
            let slot = model.iter_mut().find(|(n, _)| n == name).unwrap();
            slot.1.push((id, t as i64 - 20, text));
        }
        tx.set_root("index", &index).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(read_all(&heap), model);

    // Change one record in place of its copy, and drop a name with everything it holds.
    let mut tx = heap.write().unwrap();
    let mut index: Index = tx.root("index").unwrap().unwrap();
    let mut nuts = *index.get(&tx, "nuts").unwrap().unwrap();
    let mut first = *nuts.get(&tx, 0).unwrap().unwrap();
    tx.free_str(first.note).unwrap();
    first.note = tx.str("recounted").unwrap();
    first.qty = 99;
    nuts.set(&mut tx, 0, &first).unwrap();
    index.insert(&mut tx, "nuts", &nuts).unwrap();
    let mut washers = index.remove(&mut tx, "washers").unwrap().unwrap();
    while let Some(r) = washers.pop(&mut tx).unwrap() {
        tx.free_str(r.note).unwrap();
    }
    tx.set_root("index", &index).unwrap();
    tx.commit().unwrap();
    let slot = model.iter_mut().find(|(n, _)| n == "nuts").unwrap();
    slot.1[0] = (slot.1[0].0, 99, "recounted".into());
    model.retain(|(n, _)| n != "washers");
    assert_eq!(read_all(&heap), model);

    // And after reopening the file.
    drop(heap);
    let heap = open(&path);
    assert_eq!(read_all(&heap), model);
}

#[test]
fn a_hash_map_of_ordered_maps_of_byte_strings() {
    let dir = tempfile::tempdir().unwrap();
    let heap = open(&dir.path().join("nested2.heap"));
    type Tables = PHashMap<u64, PMap<PStr, PBytes>>;
    let mut tx = heap.write().unwrap();
    let mut tables: Tables = PHashMap::new();
    for t in 0..50u64 {
        let mut table: PMap<PStr, PBytes> = PMap::new();
        for k in 0..(t % 7) * 20 {
            let blob = tx.bytes(&vec![k as u8; (k as usize * 13) % 200]).unwrap();
            table.insert(&mut tx, &format!("row{k:04}"), &blob).unwrap();
        }
        tables.insert(&mut tx, &t, &table).unwrap();
    }
    tx.set_root("tables", &tables).unwrap();
    tx.commit().unwrap();

    let snap = heap.read().unwrap();
    let tables: Tables = snap.root("tables").unwrap().unwrap();
    tables.verify(&snap).unwrap();
    assert_eq!(tables.len(), 50);
    let t13 = tables.get(&snap, &13).unwrap().unwrap();
    assert_eq!(t13.len(), 120);
    let blob = t13.get(&snap, "row0042").unwrap().unwrap();
    assert_eq!(snap.bytes_ref(*blob).unwrap(), &vec![42u8; (42 * 13) % 200][..]);
    let total: u64 = tables.iter(&snap).map(|e| e.unwrap().1.len()).sum();
    assert_eq!(total, (0..50u64).map(|t| (t % 7) * 20).sum::<u64>());
}
