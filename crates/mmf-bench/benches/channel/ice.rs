//! iceoryx2 0.10 round trips, side by side with mmf::channel (`--features iceoryx2`): two
//! publish-subscribe services of `[u8; 64]` (ping, pong) between two processes, polled
//! busily, or with an event service each whose listener blocks until the peer notifies.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use iceoryx2::port::listener::{Listener, ListenerWaitError};
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use crate::linux::{RoundTrip, spawn};

type Msg = [u8; 64];

/// One side's ports: publish on `out`, receive on `inp`; with events, notify and listen.
struct Ports {
    _node: Node<ipc::Service>,
    publisher: Publisher<ipc::Service, Msg, ()>,
    subscriber: Subscriber<ipc::Service, Msg, ()>,
    events: Option<(Notifier<ipc::Service>, Listener<ipc::Service>)>,
    /// Listener waits that ended by their timeout.
    timeouts: Cell<u64>,
}

fn ports(out: &str, inp: &str, blocking: bool) -> Ports {
    set_log_level(LogLevel::Error); // not the "no config file" warning of every process
    let node = NodeBuilder::new().create::<ipc::Service>().unwrap();
    let service = |name: &str| {
        node.service_builder(&name.try_into().unwrap())
            .publish_subscribe::<Msg>()
            .open_or_create()
            .unwrap()
    };
    let publisher = service(out).publisher_builder().create().unwrap();
    let subscriber = service(inp).subscriber_builder().create().unwrap();
    let events = blocking.then(|| {
        let event = |name: &str| {
            node.service_builder(&format!("{name}-event").as_str().try_into().unwrap())
                .event()
                .open_or_create()
                .unwrap()
        };
        let notifier = event(out).notifier_builder().create().unwrap();
        let listener = event(inp).listener_builder().create().unwrap();
        (notifier, listener)
    });
    Ports { _node: node, publisher, subscriber, events, timeouts: Cell::new(0) }
}

impl Ports {
    fn send(&self, msg: Msg) {
        self.publisher.send_copy(msg).unwrap();
        if let Some((notifier, _)) = &self.events {
            notifier.notify().unwrap();
        }
    }

    fn recv(&self) -> Msg {
        loop {
            if let Some(sample) = self.subscriber.receive().unwrap() {
                return *sample;
            }
            match &self.events {
                // With a timeout: once in a run of hundreds of thousands of round trips, a
                // `blocking_wait` here never returned (both processes waiting in `recvfrom`
                // on their event sockets); a lost notification now costs 10 ms (counted).
                // An interrupted wait is a spurious wake-up: the raw pairs' watchdog
                // (`nudge.rs`) signals this thread when a pair kept alive through the turns
                // of the parked group stands still, as it does while iceoryx2 is measured.
                Some((_, listener)) => {
                    match listener.timed_wait(|_| {}, Duration::from_millis(10)) {
                        Ok(0) => self.timeouts.set(self.timeouts.get() + 1),
                        Ok(_) | Err(ListenerWaitError::InterruptSignal) => {}
                        Err(e) => panic!("iceoryx2 listener wait: {e:?}"),
                    }
                }
                None => std::hint::spin_loop(),
            }
        }
    }
}

fn report(p: &Ports, side: &str) {
    if p.timeouts.get() > 0 {
        eprintln!(
            "iceoryx2 {side}: {} listener waits ended by the 10 ms timeout",
            p.timeouts.get()
        );
    }
}

/// The child: echoes until a message starting with 255.
pub fn echo(ping: &str, pong: &str, blocking: bool) {
    let p = ports(pong, ping, blocking);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        let m = p.recv();
        if m[0] == 255 {
            report(&p, "echo");
            return;
        }
        p.send(m);
    }
}

pub struct IcePair {
    ports: Ports,
    child: Child,
    buf: Msg,
}

pub fn pair(blocking: bool) -> Box<dyn RoundTrip> {
    let id = std::process::id();
    let (ping, pong) = (format!("mmf-bench/ice-ping-{id}"), format!("mmf-bench/ice-pong-{id}"));
    let ports = ports(&ping, &pong, blocking);
    let mut child = spawn("ice-echo", &format!("{ping}|{pong}|{blocking}"), Stdio::null());
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // The child's subscriber exists: the first message reaches it.
    Box::new(IcePair { ports, child, buf: [7; 64] })
}

impl RoundTrip for IcePair {
    fn round_trip(&mut self) {
        self.ports.send(self.buf);
        self.buf = self.ports.recv();
    }
    fn stop(mut self: Box<Self>) {
        self.ports.send([255; 64]);
        self.child.wait().unwrap();
        report(&self.ports, "bench");
    }
}
