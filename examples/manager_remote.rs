//! A manager server on one side, a client on the other: the "manager across
//! machines" of the Python multiprocessing guide (seed 004), in one program.
//!
//! In Python, one host runs `BaseManager(address=('', 50000),
//! authkey=b'abc')` with a registered object and `serve_forever()`; another
//! connects with the same address and key and works on the object. Here a
//! child process serves a dict named `"counts"` on 127.0.0.1 (a port the
//! system picks, sent back to the parent), and the main process connects with
//! the key, counts words into the dict with an atomic `apply_or` (the
//! `increment` task runs in the server), and reads it back. A client with the
//! wrong key is refused. At the end the parent stops the server with
//! `terminate` (a child dies with its parent in any case).
//!
//! Shows: `manager::Server`, `Manager::connect`, `get_dict`, `apply_or`.
//!
//! ```text
//! cargo run --example manager_remote
//! ```

use std::time::Duration;

use mproc::connection::Address;
use mproc::manager::Server;
use mproc::{Connection, Error, Manager, Pipe};

const AUTHKEY: &[u8] = b"abracadabra";

#[mproc::task]
fn increment(n: u64) -> u64 {
    n + 1
}

/// Serves a dict named "counts" on a loopback port until killed; sends the
/// address to the parent first.
#[mproc::task]
fn serve(address: Connection<Address>) -> Result<(), String> {
    let server = Server::bind("127.0.0.1:0", AUTHKEY).map_err(|e| e.to_string())?;
    server.dict("counts");
    server.local_addr().and_then(|a| address.send(&a)).map_err(|e| e.to_string())?;
    server.serve().map_err(|e| e.to_string())
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (rx, tx) = Pipe::<Address>::simplex()?;
    let server = mproc::spawn!(serve(tx))?;
    let address = rx.recv_timeout(Duration::from_secs(30))?;
    println!("server listening on {address}");

    match Manager::connect(&address, b"wrong key") {
        Err(Error::AuthenticationFailed) => println!("a client with the wrong key is refused"),
        other => println!("unexpected: {other:?}"),
    }

    let manager = Manager::connect(&address, AUTHKEY)?;
    let counts = manager.get_dict::<String, u64>("counts")?;
    for word in "the cat saw the dog and the bird".split(' ') {
        counts.apply_or(&word.to_string(), 0, increment)?;
    }
    for (word, n) in counts.items()? {
        println!("{word}: {n}");
    }

    server.terminate()?;
    let _ = server.join();
    Ok(())
}
