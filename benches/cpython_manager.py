"""CPython side of the manager workloads: multiprocessing.Manager() and its dict and
list proxies (fork unless named), with multiprocessing.connection's Listener and
Client over a Unix socket as the transport floor.

    python3 benches/cpython_manager.py --workload roundtrip --warmup 200 --iterations 3000

Workloads (--workload):
  startup    a run: ctx.Manager() (--method: fork or forkserver), m.dict(), then
             d.get(0) answered ("samples": from before Manager() to the answer);
             then m.shutdown() ("shutdown": that call alone)
  roundtrip  one manager and dict throughout, and a child (started before the
             timing) listening on a Unix socket (connection.Listener), which the
             parent connects to (connection.Client) and which echoes every
             message; each round, in turn: a 16-byte
             send_bytes / recv_bytes ping-pong with the child ("ping"),
             d[k] = i ("insert"), d[k] answered and checked ("get"), with
             k = i % 1024; each done twice, the second time timed (so that
             it follows an operation of its own kind, not the previous
             one's peer still winding down); one sample per operation
  child      the same insert / get rounds done by a child process (started before
             its first round, which is untimed warm-up), timing each operation
             itself and sending its samples back over a Pipe ("insert", "get")
  append     `items` l.append(i) on a list proxy; one sample per batch; the list's
             final length must be exact
  clients    `clients` children (started before the timing, each with a Pipe and
             its own `items` keys); a run: d.clear(), then (timed) the parent sends
             the run number to every child, each does `items` rounds of d[k] = run;
             d[k] (checked), and answers; the parent waits for every answer; then
             len(d) must be exactly clients × items; one sample per run

Prints one JSON object: {"python": ..., "workload": ..., "samples": [seconds per
run, ...]} (startup, roundtrip and child: the keys named above). Standard library
only.
"""

import multiprocessing
import os
import shutil
import tempfile
import time
from multiprocessing import connection

from cpython_common import JOIN_TIMEOUT, Children, arguments, report, timed

CTX = multiprocessing.get_context("fork")
KEYS = 1024
PING = b"\xab" * 16


def startup(args):
    ctx = multiprocessing.get_context(args.method)
    samples = {"samples": [], "shutdown": []}
    for i in range(args.warmup + args.iterations):
        t0 = time.perf_counter()
        m = ctx.Manager()
        try:
            d = m.dict()
            if d.get(0) is not None:
                raise RuntimeError("a new dict has a key 0")
            t1 = time.perf_counter()
        finally:
            t2 = time.perf_counter()
            m.shutdown()
            t3 = time.perf_counter()
        # After the shutdown: the proxy's finalizer then sends nothing.
        del d
        if i >= args.warmup:
            samples["samples"].append(t1 - t0)
            samples["shutdown"].append(t3 - t2)
    return samples


def echo_server(conn, other, address, authkey):
    """Listens on `address`, says so on the Pipe, then sends back every message of
    the one client it accepts (the parent), until the parent closes the connection."""
    other.close()
    with connection.Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        conn.send("listening")
        with listener.accept() as c:
            try:
                while True:
                    c.send_bytes(c.recv_bytes())
            except (EOFError, BrokenPipeError, ConnectionResetError):
                pass


def roundtrip(args):
    folder = tempfile.mkdtemp(prefix=f"mproc-bench-manager-py-{os.getpid()}-")
    try:
        address = os.path.join(folder, "echo.sock")
        authkey = os.urandom(32)
        with Children(echo_server, [(address, authkey)]) as echo:
            if not echo.conns[0].poll(JOIN_TIMEOUT) or echo.conns[0].recv() != "listening":
                raise RuntimeError("the echo child did not listen")
            with connection.Client(address, family="AF_UNIX", authkey=authkey) as peer, CTX.Manager() as m:
                d = m.dict()
                samples = {"ping": [], "insert": [], "get": []}

                def ping(i):
                    peer.send_bytes(PING)
                    if peer.recv_bytes() != PING:
                        raise RuntimeError("wrong echo")

                def insert(i):
                    d[i % KEYS] = i

                def get(i):
                    v = d[i % KEYS]
                    if v != i:
                        raise RuntimeError(f"d[{i % KEYS}] is {v}, not {i}")

                variants = [("ping", ping), ("insert", insert), ("get", get)]
                for i in range(args.warmup + args.iterations):
                    for key, op in variants:
                        # Untimed, then timed: see the module's doc.
                        op(i)
                        t = time.perf_counter()
                        op(i)
                        elapsed = time.perf_counter() - t
                        if i >= args.warmup:
                            samples[key].append(elapsed)
                return samples
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def child_rounds(conn, other, d, warmup, iterations):
    """Does warmup + iterations insert / get rounds on `d`, timing each operation,
    and sends the timed ones' samples back."""
    other.close()
    inserts, gets = [], []
    for i in range(warmup + iterations):
        k = i % KEYS
        t0 = time.perf_counter()
        d[k] = i
        t1 = time.perf_counter()
        v = d[k]
        t2 = time.perf_counter()
        if v != i:
            raise RuntimeError(f"d[{k}] is {v}, not {i}")
        if i >= warmup:
            inserts.append(t1 - t0)
            gets.append(t2 - t1)
    conn.send({"insert": inserts, "get": gets})


def child(args):
    with CTX.Manager() as m:
        d = m.dict()
        with Children(child_rounds, [(d, args.warmup, args.iterations)]) as children:
            return children.conns[0].recv()


def append(args):
    n = args.items
    with CTX.Manager() as m:
        lst = m.list()

        def run():
            for i in range(n):
                lst.append(i)

        samples = timed(run, args.warmup, args.iterations)
        expected = (args.warmup + args.iterations) * n
        if len(lst) != expected:
            raise RuntimeError(f"the list has {len(lst)} items, not {expected}")
        return {"samples": samples}


def client(conn, other, d, first, count):
    """For each run number received, does `count` rounds of d[k] = run; d[k] over
    its keys first..first + count (checking each answer) and answers the run
    number, until the parent closes its end."""
    other.close()
    try:
        while True:
            run = conn.recv()
            for k in range(first, first + count):
                d[k] = run
                if d[k] != run:
                    raise RuntimeError(f"d[{k}] is not {run}")
            conn.send(run)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def clients(args):
    count, n = args.items, args.clients
    with CTX.Manager() as m:
        d = m.dict()
        with Children(client, [(d, c * count, count) for c in range(n)]) as children:
            samples = []
            for run in range(args.warmup + args.iterations):
                d.clear()
                t = time.perf_counter()
                for c in children.conns:
                    c.send(run)
                for c in children.conns:
                    if c.recv() != run:
                        raise RuntimeError("wrong answer from a client")
                elapsed = time.perf_counter() - t
                if len(d) != n * count:
                    raise RuntimeError(f"the dict has {len(d)} keys, not exactly {n * count}: lost updates")
                if run >= args.warmup:
                    samples.append(elapsed)
            return {"samples": samples}


WORKLOADS = {
    "startup": startup,
    "roundtrip": roundtrip,
    "child": child,
    "append": append,
    "clients": clients,
}


def main():
    ap = arguments(__doc__, WORKLOADS)
    ap.add_argument("--method", choices=["fork", "forkserver"], default="fork")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    method = args.method if args.workload == "startup" else "fork"
    report(args.workload, method, WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
