//! Pipes, connections, listeners and `wait`: messages keep their order and
//! boundaries, the end of the stream is `Eof` and never a hang, hostile input
//! costs an error and no memory, and only peers that know the key get through.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::alloc::largest_allocation_during;
use mproc::connection::{Address, Client, Listener, Waitable, wait};
use mproc::{Connection, Error, Pipe};
use serde::{Deserialize, Serialize};

// ---- helpers -------------------------------------------------------------------------------

#[global_allocator]
static ALLOCATOR: common::alloc::LargestAllocation = common::alloc::LargestAllocation;

/// A second handle on `conn`'s socket, to write bytes that are not well-formed frames.
/// Writes bytes into a connection's stream as they are, bypassing the framing.
struct RawWriter<'a, T>(&'a Connection<T>);

impl<T> Write for RawWriter<'_, T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.__write_raw(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn raw_writer<T>(conn: &Connection<T>) -> RawWriter<'_, T> {
    RawWriter(conn)
}

fn header(len: u64) -> [u8; 8] {
    len.to_le_bytes()
}

fn io_kind(e: &Error) -> Option<ErrorKind> {
    match e {
        Error::Io(e) => Some(e.kind()),
        _ => None,
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `len` bytes that depend on `seed` and on their position.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8).collect()
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Msg {
    id: u32,
    name: String,
    values: Vec<f64>,
    tag: Option<char>,
}

fn msg(id: u32) -> Msg {
    Msg { id, name: format!("message {id}"), values: vec![id as f64 * 0.5; id as usize % 7], tag: Some('λ') }
}

// ---- pipes: messages -----------------------------------------------------------------------

#[test]
fn messages_keep_their_order_and_boundaries() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let sent: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), b"three".to_vec(), pattern(70_000, 4), vec![0]];
    for m in &sent {
        a.send_bytes(m).unwrap();
    }
    for m in &sent {
        assert_eq!(&b.recv_bytes().unwrap(), m);
    }
}

#[test]
fn typed_messages_arrive_equal_to_what_was_sent() {
    let (a, b) = Pipe::<Msg>::duplex().unwrap();
    for id in 0..20 {
        a.send(&msg(id)).unwrap();
    }
    for id in 0..20 {
        assert_eq!(b.recv().unwrap(), msg(id));
    }
}

#[test]
fn a_duplex_pipe_carries_messages_both_ways() {
    let (a, b) = Pipe::<String>::duplex().unwrap();
    a.send(&"ping".to_string()).unwrap();
    assert_eq!(b.recv().unwrap(), "ping");
    b.send(&"pong".to_string()).unwrap();
    assert_eq!(a.recv().unwrap(), "pong");
}

#[test]
fn bytes_and_typed_messages_share_one_stream_in_order() {
    let (a, b) = Pipe::<Msg>::duplex().unwrap();
    a.send(&msg(1)).unwrap();
    a.send_bytes(b"raw").unwrap();
    a.send(&msg(2)).unwrap();
    assert_eq!(b.recv().unwrap(), msg(1));
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    assert_eq!(b.recv().unwrap(), msg(2));
}

#[test]
fn a_message_that_does_not_decode_is_a_codec_error_and_the_next_one_arrives() {
    let (a, b) = Pipe::<(u64, String)>::duplex().unwrap();
    a.send_bytes(&[0xff; 3]).unwrap();
    a.send(&(7, "fine".to_string())).unwrap();
    let err = b.recv().unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err}");
    assert!(err.to_string().contains("3 bytes"), "{err}");
    assert_eq!(b.recv().unwrap(), (7, "fine".to_string()));
}

#[mproc::test]
fn a_16_mib_message_crosses_processes_intact_both_ways() {
    const LEN: usize = 16 << 20;
    let (parent, child) = Pipe::<u64>::duplex().unwrap();
    let p = mproc::fork(move || {
        let got = child.recv_bytes().unwrap();
        let intact = got == pattern(LEN, 1);
        child.send_bytes(&pattern(LEN, 2)).unwrap();
        intact
    })
    .unwrap();
    parent.send_bytes(&pattern(LEN, 1)).unwrap();
    let back = parent.recv_bytes().unwrap();
    assert_eq!(back.len(), LEN);
    assert!(back == pattern(LEN, 2), "the message came back altered");
    assert!(p.join().unwrap(), "the child received an altered message");
}

/// Two processes sending on copies of one end, with messages larger than a
/// quarter of the pipe's ring (so each goes in several pieces): none interleave.
#[mproc::test]
fn messages_sent_from_two_processes_on_one_end_never_interleave() {
    const EACH: u32 = 40;
    const LEN: usize = 300 << 10;
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let a = Arc::new(a);
    let senders: Vec<_> = (1..=2u8)
        .map(|t| {
            let a = Arc::clone(&a);
            mproc::fork(move || {
                for i in 0..EACH {
                    let mut m = vec![t; LEN + i as usize];
                    m[1..5].copy_from_slice(&i.to_le_bytes());
                    a.send_bytes(&m).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    drop(a);
    let mut next = [0u32; 3];
    for _ in 0..2 * EACH {
        let m = b.recv_bytes().unwrap();
        let (t, i) = (m[0], u32::from_le_bytes(m[1..5].try_into().unwrap()));
        assert!(t == 1 || t == 2, "a message starting with {t}");
        assert_eq!(i, next[t as usize], "messages of one process out of order");
        assert_eq!(m.len(), LEN + i as usize);
        assert!(m[5..].iter().all(|&x| x == t), "message {i} of process {t} holds another's bytes");
        next[t as usize] += 1;
    }
    for p in senders {
        p.join().unwrap();
    }
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

#[test]
fn messages_sent_from_many_threads_at_once_never_interleave() {
    const THREADS: u8 = 8;
    const EACH: u32 = 150;
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let a = Arc::new(a);
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let len = 5 + (i as usize * 7919 + t as usize * 104_729) % 20_000;
                    let mut m = vec![t; len];
                    m[1..5].copy_from_slice(&i.to_le_bytes());
                    a.send_bytes(&m).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; THREADS as usize];
    for _ in 0..THREADS as u32 * EACH {
        let m = b.recv_bytes().unwrap();
        let t = m[0];
        let i = u32::from_le_bytes(m[1..5].try_into().unwrap());
        assert_eq!(i, next[t as usize], "messages of one thread out of order");
        next[t as usize] += 1;
        assert!(m[5..].iter().all(|&x| x == t), "message {i} of thread {t} holds another thread's bytes");
    }
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn several_receiving_threads_each_get_whole_messages_and_none_twice() {
    let (a, b) = Pipe::<u64>::duplex().unwrap();
    let b = Arc::new(b);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match b.recv() {
                        Ok(v) => got.push(v),
                        Err(Error::Eof) => return got,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for v in 0..2000u64 {
        a.send(&v).unwrap();
    }
    drop(a);
    let mut all: Vec<u64> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    all.sort();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
}

#[test]
fn connections_listeners_and_clients_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Connection<Msg>>();
    send_sync::<Connection<std::rc::Rc<u8>>>();
    send_sync::<Listener<Msg>>();
    send_sync::<Client<Msg>>();
}

// ---- the end of the stream ------------------------------------------------------------------

#[test]
fn recv_is_eof_after_the_other_end_is_dropped_and_stays_eof() {
    let (a, b) = Pipe::<String>::duplex().unwrap();
    a.send(&"last".to_string()).unwrap();
    drop(a);
    assert_eq!(b.recv().unwrap(), "last");
    assert!(matches!(b.recv(), Err(Error::Eof)));
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

#[test]
fn close_ends_the_stream_for_the_other_end() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    a.close();
    assert!(matches!(b.recv(), Err(Error::Eof)));
}

#[test]
fn send_after_the_other_end_is_gone_is_eof() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    drop(b);
    assert!(matches!(a.send(&1), Err(Error::Eof)));
}

#[mproc::test]
fn recv_is_eof_after_the_peer_process_exits() {
    let (parent, child) = Pipe::<u32>::duplex().unwrap();
    let p = mproc::fork(move || child.send(&41).is_ok()).unwrap();
    assert!(p.join().unwrap());
    assert_eq!(parent.recv().unwrap(), 41);
    // Bounded, so that a regression fails instead of hanging the suite.
    let end = parent.recv_timeout(Duration::from_secs(60));
    assert!(matches!(end, Err(Error::Eof)), "{end:?}");
}

#[mproc::test]
fn a_peer_killed_in_the_middle_of_a_message_is_an_error_not_a_hang() {
    let (parent, child) = Pipe::<String>::duplex().unwrap();
    let p = mproc::fork(move || {
        child.send(&"ready".to_string()).unwrap();
        // A header that promises a MiB, three bytes of it, and then death.
        let mut raw = raw_writer(&child);
        raw.write_all(&header(1 << 20)).unwrap();
        raw.write_all(b"abc").unwrap();
        std::thread::sleep(Duration::from_secs(120));
    })
    .unwrap();
    assert_eq!(parent.recv().unwrap(), "ready");
    assert!(!parent.poll(Some(Duration::from_millis(100))).unwrap(), "a partial message counted as ready");
    p.kill().unwrap();
    assert!(matches!(p.join(), Err(Error::Killed { signal: 9, .. })));
    let err = parent.recv_timeout(Duration::from_secs(60)).unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::UnexpectedEof), "{err}");
    assert!(err.to_string().contains("middle of a message"), "{err}");
    assert!(matches!(parent.recv(), Err(Error::Eof)));
}

/// A sender killed halfway through a message, while another process holds a copy
/// of its end: the stream cannot go on, and both sides are told so.
#[mproc::test]
fn a_sender_killed_mid_message_while_another_process_holds_its_end_breaks_the_stream() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let (started_rx, started_tx) = Pipe::<()>::simplex().unwrap();
    let a = Arc::new(a);
    let a2 = Arc::clone(&a);
    let p = mproc::fork(move || {
        started_tx.send(&()).unwrap();
        // Far more than the ring holds: blocks halfway, holding the ring's lock.
        a2.send_bytes(&vec![7u8; 16 << 20]).unwrap();
    })
    .unwrap();
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.kill().unwrap();
    assert!(matches!(p.join(), Err(Error::Killed { signal: 9, .. })));
    let sent = a.send_bytes(b"after");
    assert_eq!(io_kind(&sent.unwrap_err()), Some(ErrorKind::BrokenPipe));
    let err = b.recv_bytes_timeout(Duration::from_secs(60)).unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::UnexpectedEof), "{err}");
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

// ---- limits and corrupt input ---------------------------------------------------------------

#[test]
fn a_message_over_the_maximum_is_refused_without_allocating_it() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    b.set_max_message(64 << 10);
    assert_eq!(b.max_message(), 64 << 10);
    let mut raw = raw_writer(&a);
    raw.write_all(&header(1 << 40)).unwrap();
    raw.write_all(&[0; 100]).unwrap();
    let (r, largest) = largest_allocation_during(|| b.recv_bytes());
    let err = r.unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::InvalidData), "{err}");
    assert!(err.to_string().contains("set_max_message"), "{err}");
    assert!(largest < 1 << 20, "allocated {largest} bytes for a refused message");
}

#[test]
fn a_length_prefix_of_u64_max_is_refused_under_the_default_maximum() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    assert_eq!(b.max_message(), mproc::connection::DEFAULT_MAX_MESSAGE);
    raw_writer(&a).write_all(&header(u64::MAX)).unwrap();
    let (r, largest) = largest_allocation_during(|| b.recv_bytes());
    assert_eq!(io_kind(&r.unwrap_err()), Some(ErrorKind::InvalidData));
    assert!(largest < 1 << 20, "allocated {largest} bytes for a refused message");
}

#[test]
fn a_message_exactly_at_the_maximum_is_accepted_and_one_byte_more_is_not() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    b.set_max_message(1000);
    a.send_bytes(&[1; 1000]).unwrap();
    a.send_bytes(&[2; 1001]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), vec![1; 1000]);
    assert_eq!(io_kind(&b.recv_bytes().unwrap_err()), Some(ErrorKind::InvalidData));
}

#[test]
fn after_an_oversized_message_every_receive_fails_at_once() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    b.set_max_message(10);
    a.send_bytes(&[0; 11]).unwrap();
    a.send(&5).unwrap();
    assert_eq!(io_kind(&b.recv().unwrap_err()), Some(ErrorKind::InvalidData));
    let started = Instant::now();
    assert_eq!(io_kind(&b.recv().unwrap_err()), Some(ErrorKind::InvalidData));
    assert!(b.poll(None).unwrap(), "a broken connection must not block in poll");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_length_prefix_promising_more_than_arrives_costs_no_memory() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let mut raw = raw_writer(&a);
    raw.write_all(&header(512 << 20)).unwrap();
    raw.write_all(b"only this").unwrap();
    drop(a);
    let (r, largest) = largest_allocation_during(|| b.recv_bytes());
    assert_eq!(io_kind(&r.unwrap_err()), Some(ErrorKind::UnexpectedEof));
    assert!(largest < 4 << 20, "allocated {largest} bytes for 9 bytes received");
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

#[test]
fn a_raised_maximum_applies_to_the_next_message() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    b.set_max_message(10);
    b.set_max_message(100);
    a.send_bytes(&[3; 50]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), vec![3; 50]);
}

/// Nothing more to read without waiting: the writer's end is closed here, but a
/// child forked meanwhile by another test may still hold a copy of it for a moment.
fn wait_for_the_rest<T>(conn: &Connection<T>, case: u32) {
    assert!(conn.poll(Some(Duration::from_secs(60))).unwrap(), "case {case}: the stream never ended");
}

/// Random streams: valid frames, frames that claim any length (over the maximum,
/// up to `u64::MAX`), frames cut short, bare noise, in random order, read with every
/// kind of receive. Every call returns, none panics, none allocates more than the
/// maximum allows, and the stream always comes to a definite end.
///
/// The typed receives decode a fixed-size type: what decoding a corrupt value may
/// allocate is the codec's business (see the test after this one), not the frames'.
#[test]
fn the_frame_decoder_survives_arbitrary_bytes() {
    type Fixed = (u32, u64, bool);
    const MAX: u64 = 4096;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Well-formed encodings of the message type, from the library itself.
    let valid: Vec<Vec<u8>> = {
        let (a, b) = Pipe::<Fixed>::duplex().unwrap();
        (0..8u32)
            .map(|i| {
                a.send(&(i, u64::from(i) << (i * 7), i % 2 == 0)).unwrap();
                b.recv_bytes().unwrap()
            })
            .collect()
    };
    for case in 0..3000 {
        let (a, b) = Pipe::<Fixed>::duplex().unwrap();
        b.set_max_message(MAX);
        let mut input = Vec::new();
        for _ in 0..1 + rng.below(8) {
            match rng.below(6) {
                0 => {
                    let body = &valid[rng.below(valid.len() as u64) as usize];
                    input.extend_from_slice(&header(body.len() as u64));
                    input.extend_from_slice(body);
                }
                1 => {
                    let n = rng.below(64) as usize;
                    let body = rng.bytes(n);
                    input.extend_from_slice(&header(body.len() as u64));
                    input.extend_from_slice(&body);
                }
                2 => input.extend_from_slice(&header(rng.next())),
                3 => input.extend_from_slice(&header(MAX + 1 + rng.below(1 << 40))),
                4 => {
                    // A frame cut short: the claim exceeds what follows.
                    let claim = rng.below(MAX + 1);
                    input.extend_from_slice(&header(claim));
                    let n = rng.below(claim + 1) as usize;
                    input.extend_from_slice(&rng.bytes(n));
                }
                _ => {
                    let n = rng.below(32) as usize;
                    input.extend_from_slice(&rng.bytes(n));
                }
            }
        }
        raw_writer(&a).write_all(&input).unwrap();
        drop(a);
        let ((ended, calls), largest) = largest_allocation_during(|| {
            let mut calls = 0;
            let mut last_error: Option<ErrorKind> = None;
            while calls < 10_000 {
                calls += 1;
                let r = match rng.below(5) {
                    0 => b.recv().map(drop),
                    1 => b.recv_bytes().map(drop),
                    2 => {
                        let mut buf = vec![0; rng.below(128) as usize];
                        b.recv_bytes_into(&mut buf).map(drop)
                    }
                    3 => b.poll(Some(Duration::ZERO)).map(|ready| {
                        if !ready {
                            wait_for_the_rest(&b, case);
                        }
                    }),
                    _ => b.recv_timeout(Duration::ZERO).map(drop),
                };
                match r {
                    Ok(()) | Err(Error::Codec(_)) | Err(Error::Misuse { .. }) => {}
                    Err(Error::Timeout) => wait_for_the_rest(&b, case),
                    Err(Error::Eof) => return (true, calls),
                    Err(Error::Io(e)) => {
                        match last_error {
                            // A stream out of step stays out of step.
                            Some(kind) => {
                                assert_eq!(kind, e.kind(), "case {case}");
                                return (true, calls);
                            }
                            None => last_error = Some(e.kind()),
                        }
                        if e.kind() == ErrorKind::UnexpectedEof {
                            assert!(matches!(b.recv_bytes(), Err(Error::Eof)), "case {case}");
                            return (true, calls);
                        }
                    }
                    Err(e) => panic!("case {case}: unexpected error {e}"),
                }
            }
            (false, calls)
        });
        assert!(ended, "case {case}: no end after {calls} calls");
        assert!(largest <= 256 << 10, "case {case}: allocated {largest} bytes with a maximum of {MAX}");
    }
}

/// A small message whose value claims a huge string must not make the receiver
/// allocate the claim: the codec bounds what a value may claim by the size of
/// the message it came in.
#[test]
fn a_small_message_claiming_a_huge_string_does_not_allocate_the_claim() {
    let (a, b) = Pipe::<String>::duplex().unwrap();
    b.set_max_message(64);
    // bincode's varint: 253 then a u64 length (LE), then too few bytes.
    let mut value = vec![253];
    value.extend_from_slice(&(512u64 << 20).to_le_bytes());
    value.extend_from_slice(b"abc");
    a.send_bytes(&value).unwrap();
    let (r, largest) = largest_allocation_during(|| b.recv());
    assert!(matches!(r, Err(Error::Codec(_))));
    assert!(largest < 1 << 20, "allocated {largest} bytes for a {}-byte message", value.len());
}

// ---- recv_bytes_into, recv_timeout, poll ----------------------------------------------------

#[test]
fn recv_bytes_into_a_short_buffer_keeps_the_message_for_a_larger_one() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    a.send_bytes(&[7; 100]).unwrap();
    a.send_bytes(b"next").unwrap();
    let mut small = [0u8; 10];
    let err = b.recv_bytes_into(&mut small).unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("100 bytes") && err.to_string().contains("holds 10"), "{err}");
    let mut big = [0u8; 200];
    assert_eq!(b.recv_bytes_into(&mut big).unwrap(), 100);
    assert_eq!(big[..100], [7; 100]);
    assert_eq!(b.recv_bytes().unwrap(), b"next");
}

#[test]
fn recv_bytes_after_a_short_buffer_returns_the_kept_message() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    a.send_bytes(b"a longer message").unwrap();
    assert!(b.recv_bytes_into(&mut [0u8; 4]).is_err());
    assert_eq!(b.recv_bytes().unwrap(), b"a longer message");
}

#[test]
fn recv_bytes_into_an_exact_buffer_fills_it() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    a.send_bytes(b"four").unwrap();
    a.send_bytes(b"").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"four");
    assert_eq!(b.recv_bytes_into(&mut []).unwrap(), 0);
}

#[test]
fn recv_timeout_times_out_and_keeps_a_partial_message() {
    let (a, b) = Pipe::<String>::duplex().unwrap();
    // Send the encoding of a string in two parts.
    let (x, y) = Pipe::<String>::duplex().unwrap();
    x.send(&"patience".to_string()).unwrap();
    let body = y.recv_bytes().unwrap();
    let mut raw = raw_writer(&a);
    raw.write_all(&header(body.len() as u64)).unwrap();
    raw.write_all(&body[..3]).unwrap();
    let started = Instant::now();
    assert!(matches!(b.recv_timeout(Duration::from_millis(150)), Err(Error::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(150));
    raw.write_all(&body[3..]).unwrap();
    assert_eq!(b.recv_timeout(Duration::from_secs(10)).unwrap(), "patience");
}

#[test]
fn poll_with_a_timeout_returns_false_once_it_has_passed() {
    let (_a, b) = Pipe::<u8>::duplex().unwrap();
    let started = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(200))).unwrap());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "returned early, after {took:?}");
    assert!(took < Duration::from_secs(10), "returned late, after {took:?}");
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
}

#[test]
fn poll_is_true_when_a_message_is_there_and_recv_then_answers() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    a.send(&9).unwrap();
    assert!(b.poll(Some(Duration::from_secs(10))).unwrap());
    assert!(b.poll(Some(Duration::ZERO)).unwrap(), "a held message is still there");
    assert_eq!(b.recv_timeout(Duration::ZERO).unwrap(), 9);
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
}

#[test]
fn poll_is_true_at_the_end_of_the_stream() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    drop(a);
    assert!(b.poll(None).unwrap());
    assert!(matches!(b.recv(), Err(Error::Eof)));
}

#[test]
fn poll_waits_for_a_whole_message_not_its_first_bytes() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let mut raw = raw_writer(&a);
    raw.write_all(&header(5)).unwrap();
    raw.write_all(b"he").unwrap();
    assert!(!b.poll(Some(Duration::from_millis(100))).unwrap());
    raw.write_all(b"llo").unwrap();
    assert!(b.poll(Some(Duration::from_secs(10))).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"hello");
}

#[test]
fn poll_in_one_thread_wakes_when_another_thread_sends() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        a.send(&3).unwrap();
        a
    });
    assert!(b.poll(Some(Duration::from_secs(30))).unwrap());
    assert_eq!(b.recv().unwrap(), 3);
    drop(sender.join().unwrap());
}

#[test]
fn poll_and_wait_on_another_thread_do_not_steal_the_wake_up_of_a_blocked_receiver() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    let b = Arc::new(b);
    let receiver = {
        let b = Arc::clone(&b);
        std::thread::spawn(move || (b.recv_timeout(Duration::from_secs(60)), Instant::now()))
    };
    std::thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    a.send(&8).unwrap();
    // Race the receiver's wake-up with looks that could take the message off the socket.
    for _ in 0..1000 {
        let _ = b.poll(Some(Duration::ZERO)).unwrap();
        let _ = wait(&[&*b], Some(Duration::ZERO)).unwrap();
    }
    let (received, at) = receiver.join().unwrap();
    assert_eq!(received.unwrap(), 8);
    let late = at.duration_since(sent);
    assert!(late < Duration::from_secs(20), "the blocked receiver slept through its message for {late:?}");
}

// ---- simplex ---------------------------------------------------------------------------------

#[test]
fn a_simplex_pipe_carries_messages_from_sender_to_receiver() {
    let (rx, tx) = Pipe::<String>::simplex().unwrap();
    tx.send(&"one way".to_string()).unwrap();
    assert_eq!(rx.recv().unwrap(), "one way");
    assert!(rx.readable() && !rx.writable());
    assert!(tx.writable() && !tx.readable());
}

#[test]
fn a_simplex_receiver_cannot_send_and_its_sender_cannot_receive() {
    let (rx, tx) = Pipe::<u8>::simplex().unwrap();
    let err = rx.send(&1).unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("receiving end"), "{err}");
    assert!(matches!(rx.send_bytes(b"x"), Err(Error::Misuse { .. })));
    let err = tx.recv().unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("sending end"), "{err}");
    assert!(matches!(tx.recv_bytes(), Err(Error::Misuse { .. })));
    assert!(matches!(tx.recv_bytes_into(&mut [0; 8]), Err(Error::Misuse { .. })));
    assert!(matches!(tx.poll(Some(Duration::ZERO)), Err(Error::Misuse { .. })));
}

// ---- wait ------------------------------------------------------------------------------------

#[test]
fn wait_returns_the_indices_of_the_ready_connections() {
    let pipes: Vec<_> = (0..3).map(|_| Pipe::<u32>::duplex().unwrap()).collect();
    pipes[0].0.send(&10).unwrap();
    pipes[2].0.send(&12).unwrap();
    let receivers: Vec<&Connection<u32>> = pipes.iter().map(|(_, b)| b).collect();
    assert_eq!(wait(&receivers, Some(Duration::from_secs(10))).unwrap(), vec![0, 2]);
    assert_eq!(receivers[2].recv().unwrap(), 12);
    assert_eq!(wait(&receivers, Some(Duration::from_secs(10))).unwrap(), vec![0]);
}

#[test]
fn wait_over_a_vec_of_connections_takes_the_vec() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    let (c, d) = Pipe::<u8>::duplex().unwrap();
    let ends = vec![b, d];
    c.send(&1).unwrap();
    assert_eq!(wait(&ends, None).unwrap(), vec![1]);
    drop(a);
}

#[test]
fn wait_times_out_with_nothing_ready() {
    let (_a, b) = Pipe::<u8>::duplex().unwrap();
    let (_c, d) = Pipe::<u8>::duplex().unwrap();
    let started = Instant::now();
    assert!(wait(&[&b, &d], Some(Duration::from_millis(150))).unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(wait(&[&b, &d], Some(Duration::ZERO)).unwrap().is_empty());
}

#[test]
fn wait_counts_a_message_the_connection_already_holds() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    let (_c, d) = Pipe::<u8>::duplex().unwrap();
    a.send(&5).unwrap();
    // poll reads the message off the socket: the socket is now empty.
    assert!(b.poll(Some(Duration::from_secs(10))).unwrap());
    assert_eq!(wait(&[&d, &b], Some(Duration::ZERO)).unwrap(), vec![1]);
    assert_eq!(b.recv().unwrap(), 5);
}

#[test]
fn wait_counts_a_closed_peer_as_ready() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    drop(a);
    assert_eq!(wait(&[&b], Some(Duration::from_secs(10))).unwrap(), vec![0]);
    assert!(matches!(b.recv(), Err(Error::Eof)));
}

#[test]
fn wait_does_not_count_a_partial_message() {
    let (a, b) = Pipe::<()>::duplex().unwrap();
    let mut raw = raw_writer(&a);
    raw.write_all(&header(4)).unwrap();
    raw.write_all(b"ab").unwrap();
    assert!(wait(&[&b], Some(Duration::from_millis(100))).unwrap().is_empty());
    raw.write_all(b"cd").unwrap();
    assert_eq!(wait(&[&b], Some(Duration::from_secs(10))).unwrap(), vec![0]);
    assert_eq!(b.recv_bytes().unwrap(), b"abcd");
}

#[test]
fn wait_on_nothing_returns_at_once() {
    let none: [&Connection<u8>; 0] = [];
    assert!(wait(&none, None).unwrap().is_empty());
}

#[mproc::test]
fn wait_wakes_when_another_process_sends() {
    let (quiet, _quiet_peer) = Pipe::<u8>::duplex().unwrap();
    let (parent, child) = Pipe::<u8>::duplex().unwrap();
    let p = mproc::fork(move || {
        std::thread::sleep(Duration::from_millis(100));
        child.send(&1).is_ok()
    })
    .unwrap();
    assert_eq!(wait(&[&quiet, &parent], Some(Duration::from_secs(60))).unwrap(), vec![1]);
    assert_eq!(parent.recv().unwrap(), 1);
    assert!(p.join().unwrap());
}

#[test]
fn wait_takes_listeners_and_connections_together() {
    let listener = Listener::<u8>::bind("127.0.0.1:0", b"key").unwrap();
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    let objects: [&dyn Waitable; 2] = [&listener, &b];
    assert!(wait(&objects, Some(Duration::ZERO)).unwrap().is_empty());
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || Client::<u8>::connect(addr, b"key").map(|c| c.recv()));
    assert_eq!(wait(&objects, Some(Duration::from_secs(30))).unwrap(), vec![0]);
    let conn = listener.accept().unwrap();
    conn.send(&4).unwrap();
    assert_eq!(client.join().unwrap().unwrap().unwrap(), 4);
    a.send(&2).unwrap();
    assert_eq!(wait(&objects, Some(Duration::from_secs(10))).unwrap(), vec![1]);
}

// ---- listener and client ---------------------------------------------------------------------

#[test]
fn a_listener_and_a_client_talk_over_tcp_loopback() {
    let listener = Listener::<Msg>::bind("127.0.0.1:0", b"secret").unwrap();
    let addr = listener.local_addr().unwrap();
    let Address::Tcp(sa) = &addr else { panic!("{addr:?} is not TCP") };
    assert!(sa.ip().is_loopback() && sa.port() != 0);
    let client = std::thread::spawn(move || {
        let conn = Client::<Msg>::connect(addr, b"secret").unwrap();
        // Larger than any handshake message: the limit is back to the default.
        conn.send_bytes(&pattern(1 << 20, 5)).unwrap();
        conn.send(&msg(1)).unwrap();
        conn.recv().unwrap()
    });
    let conn = listener.accept().unwrap();
    assert!(conn.recv_bytes().unwrap() == pattern(1 << 20, 5));
    assert_eq!(conn.recv().unwrap(), msg(1));
    conn.send(&msg(2)).unwrap();
    assert_eq!(client.join().unwrap(), msg(2));
}

#[test]
fn a_listener_and_a_client_talk_over_a_unix_socket() {
    let path = common::temp_path("connection.sock");
    let listener = Listener::<String>::bind(path.as_path(), b"secret").unwrap();
    assert_eq!(listener.local_addr().unwrap(), Address::Unix(path.clone()));
    let client_path = path.clone();
    let client = std::thread::spawn(move || {
        let conn = Client::<String>::connect(&client_path, b"secret").unwrap();
        conn.send(&"over a path".to_string()).unwrap();
        conn.recv().unwrap()
    });
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv().unwrap(), "over a path");
    conn.send(&"back".to_string()).unwrap();
    assert_eq!(client.join().unwrap(), "back");
    drop(listener);
    assert!(!path.exists(), "the socket file outlived its listener");
}

#[test]
fn a_unix_socket_connection_carries_messages_larger_than_its_ring_both_ways() {
    let path = common::temp_path("connection-large.sock");
    let listener = Listener::<Msg>::bind(path.as_path(), b"secret").unwrap();
    let client_path = path.clone();
    let client = std::thread::spawn(move || {
        let conn = Client::<Msg>::connect(&client_path, b"secret").unwrap();
        conn.send_bytes(&pattern(3 << 20, 1)).unwrap();
        for id in 0..2000 {
            conn.send(&msg(id)).unwrap();
        }
        conn.recv_bytes().unwrap()
    });
    let conn = listener.accept().unwrap();
    assert!(conn.recv_bytes().unwrap() == pattern(3 << 20, 1));
    for id in 0..2000 {
        assert_eq!(conn.recv().unwrap(), msg(id));
    }
    conn.send_bytes(&pattern(5 << 20, 2)).unwrap();
    assert!(client.join().unwrap() == pattern(5 << 20, 2));
}

#[mproc::test]
fn a_unix_socket_client_killed_in_another_process_ends_the_listeners_stream() {
    let path = common::temp_path("connection-killed.sock");
    let listener = Listener::<u32>::bind(path.as_path(), b"secret").unwrap();
    let client_path = path.clone();
    let p = mproc::fork(move || {
        let conn = Client::<u32>::connect(&client_path, b"secret").unwrap();
        conn.send(&7).unwrap();
        // Blocks until killed: nothing is ever sent back.
        conn.recv().unwrap()
    })
    .unwrap();
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    p.kill().unwrap();
    let _ = p.join();
    let err = conn.recv_timeout(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, Error::Eof), "{err}");
    assert!(matches!(conn.send(&1), Err(Error::Eof)));
}

#[test]
fn binding_a_unix_path_that_exists_is_an_error() {
    let path = common::temp_path("connection-taken.sock");
    std::fs::write(&path, "taken").unwrap();
    let err = Listener::<u8>::bind(path.as_path(), b"key").unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::AddrInUse), "{err}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn connecting_where_nothing_listens_is_an_io_error() {
    let path = common::temp_path("connection-nobody.sock");
    let err = Client::<u8>::connect(path.as_path(), b"key").unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[test]
fn a_wrong_authkey_fails_on_both_sides_and_delivers_nothing() {
    let listener = Listener::<String>::bind("127.0.0.1:0", b"right key").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || Client::<String>::connect(addr, b"wrong key").map(drop));
    let accepted = listener.accept();
    assert!(matches!(accepted, Err(Error::AuthenticationFailed)), "{accepted:?}");
    let connected = client.join().unwrap();
    assert!(matches!(connected, Err(Error::AuthenticationFailed)), "{connected:?}");

    // The listener goes on; the first message it delivers is the next client's.
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let conn = Client::<String>::connect(addr, b"right key").unwrap();
        conn.send(&"first".to_string()).unwrap();
        conn
    });
    let conn = listener.accept().unwrap();
    assert_eq!(conn.recv().unwrap(), "first");
    drop(client.join().unwrap());
}

#[test]
fn a_wrong_authkey_over_a_unix_socket_fails_on_both_sides() {
    let path = common::temp_path("connection-wrong-key.sock");
    let listener = Listener::<u8>::bind(path.as_path(), b"one").unwrap();
    let client_path = path.clone();
    let client = std::thread::spawn(move || Client::<u8>::connect(client_path.as_path(), b"two").map(drop));
    assert!(matches!(listener.accept(), Err(Error::AuthenticationFailed)));
    assert!(matches!(client.join().unwrap(), Err(Error::AuthenticationFailed)));
}

#[test]
fn clients_speaking_garbage_get_errors_and_the_listener_keeps_accepting() {
    let mut listener = Listener::<String>::bind("127.0.0.1:0", b"key").unwrap();
    listener.set_handshake_timeout(Duration::from_secs(10));
    let Address::Tcp(sa) = listener.local_addr().unwrap() else { panic!("not TCP") };
    let mut rng = Rng(42);
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec(),
        [&header(u64::MAX)[..], b"xyz"].concat(),
        [&header(40)[..], &rng.bytes(40)].concat(),
        [&header(3)[..], b"{sh"].concat(),
        rng.bytes(5000),
    ];
    for bytes in garbage {
        let speaker = std::thread::spawn(move || {
            let mut s = TcpStream::connect(sa).unwrap();
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            // Read whatever comes until the listener hangs up.
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        });
        let err = listener.accept().unwrap_err();
        assert!(matches!(err, Error::AuthenticationFailed | Error::Io(_)), "{err}");
        speaker.join().unwrap();
    }
    let client = std::thread::spawn(move || {
        let conn = Client::<String>::connect(sa, b"key").unwrap();
        conn.send(&"still here".to_string()).unwrap();
        conn
    });
    assert_eq!(listener.accept().unwrap().recv().unwrap(), "still here");
    drop(client.join().unwrap());
}

#[test]
fn a_client_that_hangs_up_during_the_handshake_is_an_error_for_that_accept_only() {
    let listener = Listener::<u8>::bind("127.0.0.1:0", b"key").unwrap();
    let Address::Tcp(sa) = listener.local_addr().unwrap() else { panic!("not TCP") };
    drop(TcpStream::connect(sa).unwrap());
    let err = listener.accept().unwrap_err();
    assert!(
        matches!(io_kind(&err), Some(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)),
        "{err}"
    );
    assert!(err.to_string().contains("authentication"), "{err}");
    let client = std::thread::spawn(move || Client::<u8>::connect(sa, b"key").unwrap().send(&1).unwrap());
    assert_eq!(listener.accept().unwrap().recv().unwrap(), 1);
    client.join().unwrap();
}

#[test]
fn a_silent_client_cannot_hold_accept_past_the_handshake_timeout() {
    let mut listener = Listener::<u8>::bind("127.0.0.1:0", b"key").unwrap();
    listener.set_handshake_timeout(Duration::from_millis(300));
    assert_eq!(listener.handshake_timeout(), Duration::from_millis(300));
    let Address::Tcp(sa) = listener.local_addr().unwrap() else { panic!("not TCP") };
    let silent = TcpStream::connect(sa).unwrap();
    let started = Instant::now();
    let err = listener.accept().unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::TimedOut), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(silent);
    let client = std::thread::spawn(move || Client::<u8>::connect(sa, b"key").unwrap().send(&2).unwrap());
    assert_eq!(listener.accept().unwrap().recv().unwrap(), 2);
    client.join().unwrap();
}

#[test]
fn a_client_gives_up_on_a_listener_that_never_answers() {
    // A plain TCP socket: the kernel completes the connection, nobody speaks.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap();
    let started = Instant::now();
    let err = Client::<u8>::connect_timeout(addr, b"key", Duration::from_millis(300)).unwrap_err();
    assert_eq!(io_kind(&err), Some(ErrorKind::TimedOut), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn an_empty_authkey_is_refused_over_tcp() {
    let err = Listener::<u8>::bind("127.0.0.1:0", b"").unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    let err = Client::<u8>::connect("127.0.0.1:9", b"").unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
}

#[test]
fn an_empty_authkey_is_allowed_on_a_unix_socket_and_must_match() {
    let path = common::temp_path("connection-empty-key.sock");
    let listener = Listener::<u8>::bind(path.as_path(), b"").unwrap();
    let client_path = path.clone();
    let client =
        std::thread::spawn(move || Client::<u8>::connect(client_path.as_path(), b"").unwrap().send(&3).unwrap());
    assert_eq!(listener.accept().unwrap().recv().unwrap(), 3);
    client.join().unwrap();
    let client_path = path.clone();
    let client = std::thread::spawn(move || Client::<u8>::connect(client_path.as_path(), b"not empty").map(drop));
    assert!(matches!(listener.accept(), Err(Error::AuthenticationFailed)));
    assert!(matches!(client.join().unwrap(), Err(Error::AuthenticationFailed)));
}

#[mproc::test]
fn a_listener_serves_a_client_in_another_process() {
    let listener = Listener::<(u32, u32)>::bind("127.0.0.1:0", b"across").unwrap();
    let addr = listener.local_addr().unwrap();
    let p = mproc::fork(move || {
        let conn = Client::<(u32, u32)>::connect(&addr, b"across").unwrap();
        conn.send(&(20, 22)).unwrap();
        conn.recv().unwrap().0
    })
    .unwrap();
    let conn = listener.accept().unwrap();
    let (x, y) = conn.recv().unwrap();
    conn.send(&(x + y, 0)).unwrap();
    assert_eq!(p.join().unwrap(), 42);
}
