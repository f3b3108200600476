//! A block of named shared memory written by one process and read by another:
//! the `multiprocessing.shared_memory` example of the Python documentation,
//! in Rust.
//!
//! The Python original creates `shm_a = SharedMemory(create=True, size=10)`,
//! writes `buffer[:4] = bytearray([22, 33, 44, 55])` and `buffer[4] = 100`,
//! attaches a second handle by name, `SharedMemory(shm_a.name)`, and reads
//! `bytes(shm_b.buf[:5])` back: `b'\x16!,7d'`. Then `close()` on both and
//! `unlink()` on the creator.
//!
//! The twin does the writing in a child process, which attaches by name as
//! the second handle did; a second child receives the handle itself as a task
//! argument and adds one byte. The parent reads both results. Dropping the
//! creating handle unlinks the name (Python's `close()` + `unlink()`); the
//! children's handles never unlink.
//!
//! Shows: `SharedMemory::create`, `open` by name, a handle as a task argument,
//! `write_at`, `read_at`, `to_vec`.
//!
//! ```text
//! cargo run --example shared_memory
//! ```

use mproc::SharedMemory;

#[mproc::task]
fn writer(name: String) {
    // Attach to the existing block by its name.
    let shm = SharedMemory::open(&name).expect("the parent created it");
    shm.write_at(0, &[22, 33, 44, 55]).expect("in range");
    shm.write_at(4, &[100]).expect("in range");
}

#[mproc::task]
fn appender(shm: SharedMemory) {
    // The handle itself came as an argument: no name needed.
    shm.write_at(5, b"!").expect("in range");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let name = format!("psm_mproc_example_{}", std::process::id());
    let shm = SharedMemory::create(&name, 10)?;
    println!("Created shared memory {:?} of {} bytes", shm.name(), shm.size());

    mproc::spawn!(writer(name.clone()))?.join()?;
    let mut first = [0u8; 5];
    shm.read_at(0, &mut first)?;
    println!("A child wrote {first:?}, that is {:?}", String::from_utf8_lossy(&first));

    mproc::spawn!(appender(shm.clone()))?.join()?;
    println!("Another child appended: {:?}", String::from_utf8_lossy(&shm.to_vec()[..6]));
    Ok(())
    // `shm` created the block: dropping it here unlinks the name.
}
