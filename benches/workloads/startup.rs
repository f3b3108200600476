//! Start + join of one process running a task that does nothing, per start
//! method; floors: a bare fork + _exit + waitpid, and fork + exec + waitpid.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use mproc::StartMethod;

use crate::common::Bench;
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_ratio, measure, measure_interleaved};

/// Set in the environment of the "exec this binary" floor's child, which then
/// exits as soon as `main` starts (see [`exit_if_floor_child`]).
const EXIT_AT_MAIN: &str = "MPROC_BENCH_EXIT_AT_MAIN";

#[mproc::task]
fn noop() {}

/// Called first thing in `main` (after the entry hook): the child of the
/// "fork + exec of this binary" floor stops here.
pub fn exit_if_floor_child() {
    if std::env::var_os(EXIT_AT_MAIN).is_some() {
        // SAFETY: _exit has no preconditions and never returns.
        unsafe { libc::_exit(0) }
    }
}

fn mproc_start_join(method: StartMethod) {
    let p = mproc::spawn!(noop(); start_method = method).expect("mproc: start failed");
    p.join().expect("mproc: join failed");
}

struct Method {
    name: &'static str,
    /// mproc and its floors are cheap to time, so they get more runs than CPython.
    ours: Plan,
    cpython: Plan,
    target: f64,
}

pub fn run(bench: &Bench) -> Section {
    eprintln!("start + join of a no-op process");
    let method = |name, ours: (usize, usize), cpython: (usize, usize), target| Method {
        name,
        ours: bench.plan(ours.0, ours.1),
        cpython: bench.plan(cpython.0, cpython.1),
        target,
    };
    let methods = [
        method("fork", (50, 1000), (20, 200), 10.0),
        method("forkserver", (50, 1000), (20, 200), 20.0),
        method("spawn", (10, 200), (5, 100), 20.0),
    ];

    let [fork, forkserver, spawn] = &methods;
    let cpython_of = |m: &Method| {
        bench.cpython(&format!("CPython {}", m.name), "cpython_startup.py", &["--method", m.name], m.cpython)
    };

    // Each mproc method beside its CPython counterpart; the floors interleaved,
    // round by round, with the method they bound.
    let fork_rows = measure_interleaved(&["bare fork+waitpid", "mproc fork"], fork.ours, |i| match i {
        0 => bare_fork(),
        _ => mproc_start_join(StartMethod::Fork),
    });
    let cpython_fork = cpython_of(fork);
    let mproc_forkserver = measure("mproc forkserver", forkserver.ours, || mproc_start_join(StartMethod::ForkServer));
    let cpython_forkserver = cpython_of(forkserver);
    let true_exec = Exec::new("/bin/true", false);
    let self_exec = Exec::new("/proc/self/exe", true);
    let spawn_rows = measure_interleaved(&["exec /bin/true", "exec self", "mproc spawn"], spawn.ours, |i| match i {
        0 => true_exec.run(),
        1 => self_exec.run(),
        _ => mproc_start_join(StartMethod::Spawn),
    });
    let cpython_spawn = cpython_of(spawn);

    let [floor_fork, mproc_fork] = [&fork_rows[0], &fork_rows[1]];
    let [floor_true, floor_self, mproc_spawn] = [&spawn_rows[0], &spawn_rows[1], &spawn_rows[2]];
    let mproc = [mproc_fork, &mproc_forkserver, mproc_spawn];
    let cpython = [cpython_fork, cpython_forkserver, cpython_spawn];

    let mut section = Section::new("Start + join one process running a no-op task");
    let runs = |p: fn(&Method) -> Plan| methods.iter().map(|m| p(m).iters.to_string()).collect::<Vec<_>>().join(" / ");
    section.text(format!(
        "`mproc::spawn!(noop(); start_method = m)?.join()?` against CPython's \
         `ctx.Process(target=noop); p.start(); p.join()` (`benches/cpython_startup.py`), after warm-up \
         (both fork servers already running); × faster is CPython's median over mproc's. Runs \
         (fork / forkserver / spawn): mproc {}, CPython {}.",
        runs(|m| m.ours),
        runs(|m| m.cpython),
    ));
    let cp = bench.cpython_name();
    let mut table = Table::new(&["start method", "mproc", &cp, "× faster", "target", "met"]);
    for ((m, ours), theirs) in methods.iter().zip(mproc).zip(&cpython) {
        let ratio = theirs.as_ref().map(|t| t.median / ours.median);
        let [r, target, met] = section.check(format!("{} vs CPython", m.name), ratio, Target::AtLeast(m.target));
        let theirs = theirs.as_ref().map(Stats::spread).unwrap_or_else(|| "not measured".into());
        table.row(vec![m.name.into(), ours.spread(), theirs, r, target, met]);
    }
    section.table(table);

    section.text(
        "Floors, measured in the same process, interleaved round by round with the mproc method they \
         bound: a bare `fork()` whose child calls `_exit(0)`, then `waitpid`; a fork + `execve` of \
         `/bin/true`, then `waitpid`; and a fork + exec of this benchmark binary whose child exits as \
         soon as `main` starts (what re-executing the binary costs before any task work).",
    );
    let mut floors = Table::new(&["floor", "time", "mproc method", "mproc ÷ floor", "target", "met"]);
    let ratio = mproc_fork.median / floor_fork.median;
    let [r, target, met] = section.check("fork vs bare fork+waitpid", Some(ratio), Target::AtMost(2.0));
    floors.row(vec!["`fork` + `_exit` + `waitpid`".into(), floor_fork.spread(), "fork".into(), r, target, met]);
    for (name, f) in
        [("fork + exec `/bin/true` + `waitpid`", floor_true), ("fork + exec this binary, exit at `main`", floor_self)]
    {
        let ratio = fmt_ratio(mproc_spawn.median / f.median);
        floors.row(vec![name.into(), f.spread(), "spawn".into(), ratio, "—".into(), "—".into()]);
    }
    section.table(floors);
    section
}

/// The floor of every start method: `fork`, `_exit(0)` in the child, `waitpid`.
fn bare_fork() {
    // SAFETY: the child only calls _exit, which is async-signal-safe.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
        // SAFETY: _exit has no preconditions and never returns.
        0 => unsafe { libc::_exit(0) },
        _ => wait_ok(pid),
    }
}

/// A fork + exec of a binary with no arguments, everything allocated before the fork.
struct Exec {
    path: CString,
    argv: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    envp: Vec<*const libc::c_char>,
}

impl Exec {
    /// `exit_at_main`: add [`EXIT_AT_MAIN`] to the child's environment.
    fn new(path: &str, exit_at_main: bool) -> Exec {
        let path = CString::new(path).unwrap();
        let mut env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).unwrap()
            })
            .collect();
        if exit_at_main {
            env.push(CString::new(format!("{EXIT_AT_MAIN}=1")).unwrap());
        }
        let envp = env.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect();
        let argv = vec![path.as_ptr(), std::ptr::null()];
        Exec { path, argv, _env: env, envp }
    }

    fn run(&self) {
        // SAFETY: between fork and exec the child only calls execve and _exit, both
        // async-signal-safe, on data prepared before the fork.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
            0 => unsafe {
                libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                libc::_exit(127)
            },
            _ => wait_ok(pid),
        }
    }
}

fn wait_ok(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer; pid is our child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "waitpid failed: {e}");
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "floor child failed: status {status:#x}");
}
