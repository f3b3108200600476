//! Handles as task arguments: a pipe end handed to a child under every start
//! method, and the clear error for a handle inside a message.

use std::time::Duration;

use mproc::{Connection, Error, Pipe, Process, StartMethod};

/// Answers each number it receives with its square, until the other end closes.
#[mproc::task]
fn squares_back(conn: Connection<u64>) -> u64 {
    let mut answered = 0;
    while let Ok(n) = conn.recv() {
        conn.send(&(n * n)).unwrap();
        answered += 1;
    }
    answered
}

/// Writes `count` messages into the sending end of a simplex pipe.
#[mproc::task]
fn writes(tx: Connection<String>, count: u32) {
    for i in 0..count {
        tx.send(&format!("message {i}")).unwrap();
    }
}

/// Receives on both of two connections it was given.
#[mproc::task]
fn reads_both(a: Connection<u32>, b: Connection<u32>) -> u32 {
    a.recv().unwrap() + b.recv().unwrap()
}

/// Reads the number waiting on its own end, plus its index.
#[mproc::task]
fn reads_own(conn: Connection<u32>, index: usize) -> u32 {
    conn.recv().unwrap() + index as u32
}

/// Sends back every byte message it receives, until the other end closes.
#[mproc::task]
fn echoes_bytes(conn: Connection<()>) {
    while let Ok(bytes) = conn.recv_bytes() {
        conn.send_bytes(&bytes).unwrap();
    }
}

/// Writes the start of a frame that promises a megabyte, then dies.
#[mproc::task]
fn dies_mid_message(conn: Connection<()>) {
    conn.__write_raw(&(1u64 << 20).to_le_bytes()).unwrap();
    conn.__write_raw(b"only ten b").unwrap();
    std::process::abort();
}

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn a_duplex_pipe_end_passed_to_a_child_talks_both_ways() {
                let (here, there) = Pipe::<u64>::duplex().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(squares_back, (there,)).unwrap();
                for n in 1..=5u64 {
                    here.send(&n).unwrap();
                    assert_eq!(here.recv().unwrap(), n * n);
                }
                drop(here);
                assert_eq!(child.join().unwrap(), 5);
            }

            #[mproc::test]
            fn a_unix_socket_connection_accepted_here_is_served_by_a_child() {
                let path = std::env::temp_dir()
                    .join(format!("mproc-test-{}-handles-{}.sock", std::process::id(), stringify!($name)));
                let _ = std::fs::remove_file(&path);
                let listener = mproc::connection::Listener::<u64>::bind(path.as_path(), b"key").unwrap();
                let client_path = path.clone();
                let client = std::thread::spawn(move || {
                    let conn = mproc::connection::Client::<u64>::connect(client_path.as_path(), b"key").unwrap();
                    (1..=4u64).map(|n| conn.send(&n).and_then(|()| conn.recv())).collect::<Result<Vec<_>, _>>()
                });
                let accepted = listener.accept().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(squares_back, (accepted,)).unwrap();
                assert_eq!(client.join().unwrap().unwrap(), vec![1, 4, 9, 16]);
                assert_eq!(child.join().unwrap(), 4);
            }

            #[mproc::test]
            fn the_reader_sees_eof_once_the_child_holding_the_writer_exits() {
                let (rx, tx) = Pipe::<String>::simplex().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(writes, (tx, 3)).unwrap();
                // Our copy of the sending end went into the arguments and is gone:
                // only the child holds one now.
                let got: Vec<String> = std::iter::from_fn(|| rx.recv().ok()).collect();
                assert_eq!(got, ["message 0", "message 1", "message 2"]);
                assert!(matches!(rx.recv(), Err(Error::Eof)));
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_pipe_end_passed_to_a_pool_task_reaches_the_worker() {
                let pool = mproc::Pool::builder().processes(2).start_method(METHOD).build().unwrap();
                let (here, there) = Pipe::<u64>::duplex().unwrap();
                let answered = pool.apply_async(squares_back, (there,));
                here.send(&7).unwrap();
                assert_eq!(here.recv().unwrap(), 49);
                drop(here);
                assert_eq!(answered.get().unwrap(), 1);
                // Each item of a map brings its own handle.
                let pipes: Vec<_> = (0..6u32).map(|_| Pipe::<u32>::duplex().unwrap()).collect();
                let mut ours = Vec::new();
                let mut theirs = Vec::new();
                for (i, (a, b)) in pipes.into_iter().enumerate() {
                    a.send(&(10 * i as u32)).unwrap();
                    ours.push(a);
                    theirs.push((b, i));
                }
                let sums = pool.map_chunked(reads_own, theirs, 2).unwrap();
                assert_eq!(sums, (0..6u32).map(|i| 11 * i).collect::<Vec<_>>());
            }

            #[mproc::test]
            fn a_16_mib_message_crosses_to_a_child_and_back_intact() {
                let (here, there) = Pipe::<()>::duplex().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(echoes_bytes, (there,)).unwrap();
                let big: Vec<u8> = (0..16usize << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
                here.send_bytes(&big).unwrap();
                assert!(here.recv_bytes().unwrap() == big);
                drop(here);
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_child_killed_in_the_middle_of_a_message_is_an_error_then_eof() {
                let (here, there) = Pipe::<()>::duplex().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(dies_mid_message, (there,)).unwrap();
                let err = here.recv_bytes().unwrap_err();
                assert!(!matches!(err, Error::Eof), "{err}");
                assert!(matches!(here.recv_bytes(), Err(Error::Eof)));
                assert!(matches!(child.join(), Err(Error::Killed { signal: 6, .. })));
            }

            #[mproc::test]
            fn several_handles_in_one_call_each_arrive() {
                let (a_here, a_there) = Pipe::<u32>::duplex().unwrap();
                let (b_here, b_there) = Pipe::<u32>::duplex().unwrap();
                a_here.send(&40).unwrap();
                b_here.send(&2).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(reads_both, (a_there, b_there)).unwrap();
                assert_eq!(child.join().unwrap(), 42);
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);

#[mproc::test]
fn a_connection_inside_a_message_is_an_error_that_says_so() {
    let (a, _b) = Pipe::<Connection<u8>>::duplex().unwrap();
    let (inner, _other) = Pipe::<u8>::duplex().unwrap();
    let err = a.send(&inner).unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err}");
    assert!(err.to_string().contains("only as a task argument"), "{err}");
}

#[mproc::test]
fn a_connection_passed_on_takes_the_messages_already_read_off_its_socket() {
    let (a, b) = Pipe::<u8>::duplex().unwrap();
    for n in [5u8, 6, 7] {
        a.send(&n).unwrap();
    }
    // poll reads ahead: all three may now sit in b's buffer, one of them held.
    assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    let child = Process::builder().start_method(StartMethod::ForkServer).spawn(sums_three, (b,)).unwrap();
    assert_eq!(child.join().unwrap(), 18);
}

#[mproc::task]
fn sums_three(conn: Connection<u8>) -> u8 {
    (0..3).map(|_| conn.recv().unwrap()).sum()
}

#[mproc::task]
fn naps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[mproc::test]
fn wait_returns_the_process_that_ended_among_connections_and_processes() {
    let (_quiet, listening) = Pipe::<u8>::duplex().unwrap();
    let slow = mproc::spawn!(naps(60_000)).unwrap();
    let quick = mproc::spawn!(naps(10)).unwrap();
    let objects: [&dyn mproc::connection::Waitable; 3] = [&listening, &slow, &quick];
    let ready = mproc::connection::wait(&objects, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(ready, vec![2]);
    assert_eq!(quick.join().unwrap(), 10);
    slow.kill().unwrap();
}
