//! The server process of [`Manager::start`](super::Manager::start): a child
//! started like any task (so under the default start method), serving on a
//! Unix socket in a private directory, for as long as its owner keeps its end
//! of the lifeline open.
//!
//! The lifeline is a duplex pipe: the server says `Ready` (or why not) on it
//! once it listens, and stops when the owner says `Stop` or its end closes —
//! which happens when the owner shuts the manager down, drops it, exits or dies
//! by any means, SIGKILL included. (A `Fork` child of the owner that runs a
//! task by name holds no copy of the owner's end: see `handle::drop_inherited`.)

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::server::Server;
use crate::connection::{Connection, Pipe};
use crate::error::{Error, Result};
use crate::process::Process;
use crate::start::StartMethod;
use crate::task::{self, Invoked, TaskEntry};

/// How long the owner waits for the server to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `shutdown` waits for the server to exit before killing it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What travels on the lifeline.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Signal {
    /// Server → owner: listening.
    Ready,
    /// Server → owner: cannot listen, and why.
    Failed(String),
    /// Owner → server: stop serving and exit.
    Stop,
}

/// The body of the server process.
fn manager_server(socket: PathBuf, authkey: Vec<u8>, lifeline: Connection<Signal>) {
    // Each client connection in shared memory holds five descriptors here; with
    // the soft limit most systems start with (1024), a server could not hold the
    // connections it allows. Where even the hard limit is short, connections past
    // it stay on their socket (one descriptor each).
    let _ = crate::sys::fd::raise_descriptor_limit();
    let server = match Server::bind(socket.as_path(), &authkey) {
        Ok(server) => server,
        Err(e) => {
            // The owner learns it from the message, or from the closed lifeline.
            let _ = lifeline.send(&Signal::Failed(e.to_string()));
            return;
        }
    };
    if lifeline.send(&Signal::Ready).is_err() {
        return;
    }
    let handle = server.handle();
    let watcher = std::thread::Builder::new().name("mproc-manager-lifeline".into()).spawn(move || {
        // A Stop, the end of the stream (the owner is gone) or an error: all mean stop.
        let _ = lifeline.recv();
        handle.stop();
    });
    if watcher.is_err() {
        return;
    }
    let _ = server.serve();
    drop(server);
    // The owner removes the directory too; this covers an owner that died.
    if let Some(dir) = socket.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

// The server process runs `manager_server` by name, like any task, so that it
// starts under every start method: the registration `#[mproc::task]` would
// write (which cannot be used inside mproc itself, whose paths it names).
fn invoke_manager_server(input: &[u8]) -> Invoked {
    task::invoke(input, |(socket, key, lifeline)| manager_server(socket, key, lifeline))
}

fn invoke_manager_server_chunk(input: &[u8]) -> Invoked {
    task::invoke_chunk(input, |(socket, key, lifeline)| manager_server(socket, key, lifeline))
}

fn manager_server_key() -> &'static str {
    std::any::type_name_of_val(&manager_server)
}

inventory::submit! {
    TaskEntry::new(
        "mproc::manager::local::manager_server",
        manager_server_key,
        invoke_manager_server,
        invoke_manager_server_chunk,
    )
}

/// The owner's side of a server process it started.
pub(crate) struct Owned {
    process: Process<()>,
    lifeline: Connection<Signal>,
    dir: PathBuf,
    /// The process that started it: only it shuts it down (a forked copy of the
    /// `Manager` must not stop its parent's server when dropped).
    owner: u32,
}

impl Owned {
    /// Starts a server process; returns it and its socket's path and authkey.
    pub(crate) fn start(method: Option<StartMethod>) -> Result<(Owned, PathBuf, Vec<u8>)> {
        let mut authkey = vec![0u8; 32];
        crate::sys::random::fill(&mut authkey).map_err(|e| no_randomness(e, "key"))?;
        let dir = private_dir()?;
        let socket = dir.join("manager.sock");
        match Self::launch(method, &dir, &socket, &authkey) {
            Ok(owned) => Ok((owned, socket, authkey)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn launch(method: Option<StartMethod>, dir: &Path, socket: &Path, authkey: &[u8]) -> Result<Owned> {
        let (mine, theirs) = Pipe::<Signal>::duplex()?;
        let mut builder = Process::builder().name("Manager").daemon(true);
        if let Some(method) = method {
            builder = builder.start_method(method);
        }
        // `theirs` goes with the arguments; our copy closes when they are dropped here.
        let process = builder.spawn(manager_server, (socket.to_path_buf(), authkey.to_vec(), theirs))?;
        let owned = Owned { process, lifeline: mine, dir: dir.to_path_buf(), owner: std::process::id() };
        match owned.lifeline.recv_timeout(READY_TIMEOUT) {
            Ok(Signal::Ready) => Ok(owned),
            Ok(Signal::Failed(why)) => {
                owned.stop();
                Err(Error::Io(io::Error::other(format!("the manager server cannot listen: {why}"))))
            }
            Ok(Signal::Stop) | Err(_) => {
                // It died, or never answered: report how it ended, if it did.
                let _ = owned.process.kill();
                let ended = owned.process.join_timeout(EXIT_TIMEOUT);
                owned.stop();
                Err(match ended {
                    Err(e) => e,
                    Ok(_) => Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the manager server did not start listening within {READY_TIMEOUT:?}"),
                    )),
                })
            }
        }
    }

    pub(crate) fn pid(&self) -> crate::Pid {
        self.process.pid()
    }

    /// Stops the server (asking first, killing it if it does not exit in time),
    /// reaps it and removes its directory. In a process other than the one that
    /// started it, only lets go of this copy.
    pub(crate) fn stop(self) {
        if self.owner != std::process::id() {
            return;
        }
        let _ = self.lifeline.send(&Signal::Stop);
        drop(self.lifeline);
        if !matches!(self.process.join_timeout(EXIT_TIMEOUT), Ok(Some(()))) && self.process.is_alive() {
            let _ = self.process.kill();
            let _ = self.process.join_timeout(EXIT_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory only this user can enter, for the socket:
/// `$TMPDIR/mproc-manager-<owner pid>-<random>`, mode 0700.
fn private_dir() -> Result<PathBuf> {
    sweep_stale_dirs();
    let mut tag = [0u8; 8];
    crate::sys::random::fill(&mut tag).map_err(|e| no_randomness(e, "directory name"))?;
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("mproc-manager-{}-{hex}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
        Error::Io(io::Error::new(e.kind(), format!("cannot make the manager's directory {}: {e}", dir.display())))
    })?;
    Ok(dir)
}

/// Removes the directories of managers whose owner is gone. An owner killed
/// by a signal takes its server with it (the parent-death signal, the fork
/// server's rule), before either can remove the directory; the next manager
/// started on the host cleans up, as shared memory is cleaned up at next start.
fn sweep_stale_dirs() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("mproc-manager-")) else { continue };
        let Some(pid) = rest.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok()) else { continue };
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The kernel gave no random bytes for the manager's `what`.
fn no_randomness(e: io::Error, what: &str) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("cannot get random bytes for the manager's {what} (getrandom): {e}")))
}
