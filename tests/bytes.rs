//! `mproc::Bytes`: byte buffers that cross every channel intact, encoded as one
//! byte string, and whose claimed length is never believed before it is seen.

mod common;

use common::alloc::largest_allocation_during;
use mproc::{Bytes, Connection, Error, Pipe, Queue};
use serde::{Deserialize, Serialize};

// ---- helpers -------------------------------------------------------------------------------

#[global_allocator]
static ALLOCATOR: common::alloc::LargestAllocation = common::alloc::LargestAllocation;

/// Bytes that differ from place to place, so that a shifted or truncated copy shows.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const MIB: usize = 1 << 20;

// ---- tasks ---------------------------------------------------------------------------------

#[mproc::task]
fn pattern_of(len: usize) -> Bytes {
    pattern(len)
}

#[mproc::task]
fn reversed(mut b: Bytes) -> Bytes {
    b.reverse();
    b
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Frame {
    index: u64,
    pixels: Bytes,
}

#[mproc::task]
fn next_frame(f: Frame) -> Frame {
    Frame { index: f.index + 1, pixels: f.pixels }
}

/// Gets one item from `input` and puts it, reversed, on `output`.
#[mproc::task]
fn reverses_from_queue(input: Queue<Bytes>, output: Queue<Bytes>) {
    let mut b = input.get().unwrap();
    b.reverse();
    output.put(b).unwrap();
}

/// Receives one message and sends it back reversed.
#[mproc::task]
fn reverses_over_pipe(conn: Connection<Bytes>) {
    let mut b = conn.recv().unwrap();
    b.reverse();
    conn.send(&b).unwrap();
}

// ---- round trips ---------------------------------------------------------------------------

/// Sends `values` from another thread (a message larger than the pipe's buffer
/// waits for the reader).
fn send_all(conn: Connection<Bytes>, values: Vec<Bytes>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for v in &values {
            conn.send(v).unwrap();
        }
    })
}

#[test]
fn bytes_of_every_size_round_trip_through_a_pipe() {
    let (a, b) = Pipe::<Bytes>::duplex().unwrap();
    let sizes = [0, 1, MIB];
    let sender = send_all(a, sizes.iter().map(|&len| pattern(len)).collect());
    for len in sizes {
        assert_eq!(b.recv().unwrap(), pattern(len), "{len} bytes");
    }
    sender.join().unwrap();
}

#[test]
fn bytes_travel_as_a_length_and_the_raw_bytes() {
    let (a, b) = Pipe::<Bytes>::duplex().unwrap();
    let sender = send_all(a, vec![Bytes::from(b"abc"), pattern(MIB)]);
    // bincode's varint length (3), then the bytes as they are.
    assert_eq!(b.recv_bytes().unwrap(), [3, b'a', b'b', b'c']);
    // 252 and a u32 length, then the bytes.
    let big = b.recv_bytes().unwrap();
    assert_eq!(big[..5], [252, 0, 0, 0x10, 0]);
    assert_eq!(big[5..], pattern(MIB)[..]);
    sender.join().unwrap();
}

#[mproc::test]
fn bytes_cross_a_queue_to_a_child_and_back_intact() {
    let (input, output) = (Queue::<Bytes>::new().unwrap(), Queue::<Bytes>::new().unwrap());
    let p = mproc::spawn!(reverses_from_queue(input.clone(), output.clone())).unwrap();
    let sent = pattern(MIB + 3);
    input.put(sent.clone()).unwrap();
    let back = output.get().unwrap();
    p.join().unwrap();
    assert_eq!(back.len(), sent.len());
    assert!(back.iter().rev().eq(sent.iter()));
}

#[mproc::test]
fn bytes_cross_a_pipe_to_a_child_and_back_intact() {
    let (mine, theirs) = Pipe::<Bytes>::duplex().unwrap();
    let p = mproc::spawn!(reverses_over_pipe(theirs)).unwrap();
    let sent = pattern(MIB + 3);
    mine.send(&sent).unwrap();
    let back = mine.recv().unwrap();
    p.join().unwrap();
    assert!(back.iter().rev().eq(sent.iter()));
}

#[mproc::test]
fn a_task_returns_and_takes_bytes_under_the_default_start_method() {
    assert_eq!(mproc::spawn!(pattern_of(MIB)).unwrap().join().unwrap(), pattern(MIB));
    assert_eq!(mproc::spawn!(pattern_of(0)).unwrap().join().unwrap(), Bytes::new());
    let back = mproc::spawn!(reversed(Bytes::from(b"stressed"))).unwrap().join().unwrap();
    assert_eq!(back, *b"desserts".as_slice());
}

#[mproc::test]
fn bytes_travel_as_a_field_of_a_struct() {
    let sent = Frame { index: 7, pixels: pattern(MIB) };
    let back = mproc::spawn!(next_frame(sent)).unwrap().join().unwrap();
    assert_eq!(back, Frame { index: 8, pixels: pattern(MIB) });
}

// ---- hostile input -------------------------------------------------------------------------

/// A small message whose `Bytes` claims a huge length must not make the
/// receiver allocate the claim: beyond the codec's limit the claim is refused,
/// and within it the bytes must be there before anything is allocated for them.
#[test]
fn a_small_message_claiming_huge_bytes_does_not_allocate_the_claim() {
    let (a, b) = Pipe::<Bytes>::duplex().unwrap();
    b.set_max_message(64);
    // bincode's varint: 253 then a u64 length (LE), then too few bytes.
    for claim in [512u64 << 20, 1_000_000, 60_000] {
        let mut value = vec![253];
        value.extend_from_slice(&claim.to_le_bytes());
        value.extend_from_slice(b"abc");
        a.send_bytes(&value).unwrap();
        let (r, largest) = largest_allocation_during(|| b.recv());
        assert!(matches!(r, Err(Error::Codec(_))), "claim of {claim}: {r:?}");
        assert!(largest < 16 << 10, "allocated {largest} bytes for a {}-byte message claiming {claim}", value.len());
    }
    // The pipe is still in step.
    a.send(&Bytes::from(b"fine")).unwrap();
    assert_eq!(b.recv().unwrap(), *b"fine".as_slice());
}

/// A received buffer is allocated once, at its size: decoding is one copy, not
/// a vector grown byte by byte (which would reallocate past the size).
#[test]
fn decoding_allocates_the_buffer_once_at_its_size() {
    let (a, b) = Pipe::<Bytes>::duplex().unwrap();
    let len = MIB + 3;
    let sender = send_all(a, vec![pattern(len)]);
    let (got, largest) = largest_allocation_during(|| b.recv().unwrap());
    sender.join().unwrap();
    assert_eq!(got, pattern(len));
    assert_eq!(got.0.capacity(), len);
    assert!(largest < len + 64, "allocated {largest} bytes for a {len}-byte buffer");
}
