"""CPython side of the shared-state workloads: multiprocessing.Lock, Value, Array and
multiprocessing.shared_memory.SharedMemory (fork).

    python3 benches/cpython_shared.py --workload lock --items 100000 --warmup 3 --iterations 30

Workloads (--workload):
  lock         `items` pairs of lock.acquire(); lock.release() on an uncontended
               Lock in this process; one sample per batch ("samples"); also
               `items` rounds of `with lock: pass` ("with")
  increments   two children (started before the timing, each with a Pipe) each do
               `items` rounds of `with v.get_lock(): v.value += 1` on one
               Value('q', 0); one sample per run, from the parent's first command
               to both children's answers; the final value must be exactly
               2 × items
  array_cold   a run: Array('d', items), start a child that fills it (a[i] = i,
               under the array's lock, one loop), join it, sum the array under its
               lock in the parent; one sample per run
  array_warm   the same Array and child throughout (started before the timing): a
               run is a command over a Pipe, the child fills the array and answers,
               the parent sums it
  shm          a SharedMemory of `size` bytes and a child (started before the
               timing) holding a private bytearray of that size: per round the
               child writes it into the segment (shm.buf[:] = data; "write": from
               the parent's command to the child's answer), then the parent reads
               the segment into a reused bytearray through a memoryview
               (memoryview(into)[:] = shm.buf, one copy; "read_into"; a plain
               into[:] = shm.buf would first copy the segment into a temporary
               bytearray) and into a new bytes object (bytes(shm.buf);
               "read_bytes")

Prints one JSON object: {"python": ..., "workload": ..., "samples": [seconds per
run, ...]} (the lock and shm workloads: the keys named above). Standard library
only.
"""

import multiprocessing
import os
import time
from multiprocessing import shared_memory

from cpython_common import Children, arguments, report, timed

CTX = multiprocessing.get_context("fork")
PATTERN = 0xAB


def lock_workload(args):
    lock = CTX.Lock()
    n = args.items

    def pairs():
        for _ in range(n):
            lock.acquire()
            lock.release()

    def with_form():
        for _ in range(n):
            with lock:
                pass

    return {
        "samples": timed(pairs, args.warmup, args.iterations),
        "with": timed(with_form, args.warmup, args.iterations),
    }


def serve(conn, other, work):
    """Calls work(command) for each command received and answers with it, until the
    parent closes its end."""
    other.close()
    try:
        while True:
            k = conn.recv()
            work(k)
            conn.send(k)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def increments(args):
    n = args.items
    v = CTX.Value("q", 0)

    def work(count):
        for _ in range(count):
            with v.get_lock():
                v.value += 1

    with Children(serve, [(work,)] * 2) as children:

        def run():
            v.value = 0
            for c in children.conns:
                c.send(n)
            for c in children.conns:
                if c.recv() != n:
                    raise RuntimeError("wrong answer")
            if v.value != 2 * n:
                raise RuntimeError(f"final value {v.value}, expected exactly {2 * n}: lost updates")

        return {"samples": timed(run, args.warmup, args.iterations)}


def fill(a):
    with a.get_lock():
        obj = a.get_obj()
        for i in range(len(obj)):
            obj[i] = i


def summed(a):
    with a.get_lock():
        return sum(a.get_obj())


def expected_sum(n):
    return n * (n - 1) // 2


def array_cold(args):
    n = args.items

    def run():
        a = CTX.Array("d", n)
        p = CTX.Process(target=fill, args=(a,))
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"child exited with {p.exitcode}")
        if summed(a) != expected_sum(n):
            raise RuntimeError("wrong sum")

    return {"samples": timed(run, args.warmup, args.iterations)}


def array_warm(args):
    n = args.items
    a = CTX.Array("d", n)
    with Children(serve, [(lambda _k: fill(a),)]) as children:
        (conn,) = children.conns

        def run():
            conn.send(0)
            conn.recv()
            if summed(a) != expected_sum(n):
                raise RuntimeError("wrong sum")

        return {"samples": timed(run, args.warmup, args.iterations)}


def shm_workload(args):
    size = args.size
    shm = shared_memory.SharedMemory(name=f"mproc-bench-shared-py-{os.getpid()}", create=True, size=size)
    try:
        data = bytearray([PATTERN]) * size

        def write(round_):
            data[:8] = round_.to_bytes(8, "little")
            shm.buf[:] = data

        into = bytearray(size)
        into_view = memoryview(into)
        with Children(serve, [(write,)]) as children:
            (conn,) = children.conns
            samples = {"write": [], "read_into": [], "read_bytes": []}
            for i in range(args.warmup + args.iterations):
                t0 = time.perf_counter()
                conn.send(i)
                conn.recv()
                t1 = time.perf_counter()
                into_view[:] = shm.buf
                t2 = time.perf_counter()
                fresh = bytes(shm.buf)
                fresh_ok = int.from_bytes(fresh[:8], "little") == i
                del fresh
                t3 = time.perf_counter()
                if not fresh_ok or int.from_bytes(into[:8], "little") != i or into[size - 1] != PATTERN:
                    raise RuntimeError("wrong bytes read")
                if i >= args.warmup:
                    samples["write"].append(t1 - t0)
                    samples["read_into"].append(t2 - t1)
                    samples["read_bytes"].append(t3 - t2)
            return samples
    finally:
        shm.close()
        shm.unlink()


WORKLOADS = {
    "lock": lock_workload,
    "increments": increments,
    "array_cold": array_cold,
    "array_warm": array_warm,
    "shm": shm_workload,
}


def main():
    ap = arguments(__doc__, WORKLOADS)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=256 << 20)
    args = ap.parse_args()
    report(args.workload, "fork", WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
