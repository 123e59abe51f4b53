//! Named mappings are the OS's own objects: Python's `multiprocessing.shared_memory` opens
//! what mmf created, and mmf opens what Python created (and never removes it).
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use mmf::{Access, Mapping};
use mmf_testkit::{create_named, unique_name};

fn python() -> Command {
    let mut command = Command::new("python3");
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    command
}

#[test]
fn python_reads_what_mmf_wrote() {
    let name = unique_name("py-reads");
    let mapping = create_named(&name, 10_000).unwrap();
    mapping.view_mut(..).unwrap().write_at(4000, b"written by mmf").unwrap();
    let script = format!(
        r#"
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(name="{name}")
# Python < 3.13 would unlink an attached object at exit: it is not Python's to remove.
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.size, bytes(shm.buf[4000:4014]).decode())
shm.buf[0:6] = b"python"
shm.close()
"#
    );
    let out = python().arg("-c").arg(script).output().expect("python3 must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (size, text) = stdout.trim().split_once(' ').unwrap();
    assert!(size.parse::<u64>().unwrap() >= 10_000, "{stdout}");
    assert_eq!(text, "written by mmf");
    let mut buf = [0; 6];
    mapping.view(..).unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"python");
}

#[test]
fn mmf_opens_what_python_created_and_leaves_it_to_python() {
    let name = unique_name("py-made");
    let script = format!(
        r#"
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(name="{name}", create=True, size=8192)
shm.buf[100:117] = b"written by python"
print("ready", flush=True)
sys.stdin.readline()
print(bytes(shm.buf[200:208]).decode(), flush=True)
shm.close()
shm.unlink()
"#
    );
    let mut child = python().arg("-c").arg(script).spawn().expect("python3 must be installed");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let mapping = Mapping::open(&name, Access::ReadWrite).unwrap();
    assert_eq!(mapping.size(), 8192);
    let mut buf = [0; 17];
    mapping.view(..).unwrap().read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"written by python");
    mapping.view_mut(..).unwrap().write_at(200, b"from mmf").unwrap();
    drop(mapping);
    assert!(
        std::path::Path::new("/dev/shm").join(&name).exists(),
        "mmf must not remove an object another program created"
    );

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "from mmf");
    assert!(child.wait().unwrap().success());
}

/// Python 3.8–3.12 unlinks a name it merely attached to when it exits (its resource
/// tracker), while mmf still holds the object: what the README warns about. Without the
/// workaround the name is gone; with it (the test above) it stays.
#[test]
fn python_without_the_workaround_removes_an_attached_name() {
    let name = unique_name("py-tracker");
    let mapping = create_named(&name, 4096).unwrap();
    let script = format!(
        r#"
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(name="{name}")
shm.close()
print(sys.version_info >= (3, 13))
"#
    );
    let out = python().arg("-c").arg(script).output().expect("python3 must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tracks_attachers = String::from_utf8(out.stdout).unwrap().trim() == "False";
    let still_there = Mapping::open(&name, Access::ReadOnly).is_ok();
    assert_eq!(still_there, !tracks_attachers, "Python < 3.13 removes what it attached to");
    drop(mapping);
}
