//! An mproc child (fork) serving `u64` commands on the other end of a duplex
//! pipe, for the workloads that time work done in another process.

use std::time::Duration;

use mproc::{Connection, Pipe, Process, ProcessBuilder, StartMethod};

/// A child running a task on the other end of a duplex pipe. Dropping it closes
/// our end (the task then returns), runs its `closing` hook (closing the queues
/// it puts to, so that a put waiting for room fails), and joins the child,
/// killing it if it has not ended within 10 s: no child outlives it, on error
/// paths included.
pub struct Child {
    conn: Option<Connection<u64>>,
    process: Option<Process<()>>,
    close: Option<Box<dyn FnOnce()>>,
}

impl Child {
    /// Starts the child: `spawn` gets a builder set to fork and the child's end.
    pub fn start(spawn: impl FnOnce(ProcessBuilder, Connection<u64>) -> mproc::Result<Process<()>>) -> Child {
        let (here, there) = Pipe::<u64>::duplex().expect("mproc: Pipe::duplex failed");
        let process = spawn(Process::builder().start_method(StartMethod::Fork), there).expect("mproc: start failed");
        Child { conn: Some(here), process: Some(process), close: None }
    }

    /// Runs `close` (closing the queues the child puts to) when the child is ended.
    pub fn closing(mut self, close: impl FnOnce() + 'static) -> Child {
        self.close = Some(Box::new(close));
        self
    }

    pub fn conn(&self) -> &Connection<u64> {
        self.conn.as_ref().expect("connection open until drop")
    }

    pub fn send(&self, command: u64) {
        self.conn().send(&command).expect("mproc: send failed");
    }

    /// Waits for the answer to a command, which must be the command itself.
    pub fn answered(&self, command: u64) {
        assert_eq!(self.conn().recv().expect("mproc: recv failed"), command, "wrong answer from the child");
    }

    pub fn call(&self, command: u64) {
        self.send(command);
        self.answered(command);
    }

    /// Ends the child and checks that its task returned normally.
    pub fn finish(mut self) {
        if let Err(e) = self.stop() {
            panic!("mproc: child failed: {e}");
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        drop(self.conn.take());
        if let Some(close) = self.close.take() {
            close();
        }
        let Some(p) = self.process.take() else { return Ok(()) };
        match p.join_timeout(Duration::from_secs(10)) {
            Ok(Some(())) => Ok(()),
            Ok(None) => {
                let _ = p.kill();
                let _ = p.join();
                Err("did not end within 10 s of its pipe closing; killed".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("  warning: mproc child: {e}");
        }
    }
}
