"""CPython side of the IPC workloads: multiprocessing.Pipe and multiprocessing.Queue
between the parent and one child process (fork), the child started before the timing.

    python3 benches/cpython_ipc.py --workload small --items 50000 --warmup 2 --iterations 10

Workloads (--workload):
  small     the child sends `items` small ints (conn.send(i)), the parent receives
            them all (conn.recv()); one sample per batch
  pingpong  the parent sends a small int, the child sends it back; one sample per
            round trip
  bytes     the child sends `count` payloads of `size` bytes (conn.send_bytes), the
            parent receives them (conn.recv_bytes); one sample per batch
  scaling   `bytes` at every size of --sizes with the matching count of --counts
            (comma-separated), the same child throughout
  queue_small    the child puts `items` small ints on a Queue (q.put(i)), the
                 parent gets them all (q.get()); one sample per batch
  queue_bytes    the child puts `count` payloads of `size` bytes (the same bytes
                 object each time), the parent gets them; one sample per batch
  queue_scaling  `queue_bytes` at every size of --sizes with the matching count
                 of --counts, the same child and queue throughout

Each batch starts with the parent's command to the child (one small message on
the Pipe; for the queue workloads too, the queue carries only the items) and
ends when the parent has received the batch's last message. Prints one JSON
object: {"python": ..., "workload": ..., "samples": [seconds per run, ...]}; the
scaling workload prints "points": [{"size", "count", "samples"}, ...] instead.
Standard library only.
"""

import multiprocessing

from cpython_common import arguments, report, timed


def small_sender(conn, other):
    """Sends 0..n-1 for each n received, until the parent closes its end."""
    other.close()
    try:
        while True:
            n = conn.recv()
            for i in range(n):
                conn.send(i)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def echo(conn, other):
    """Sends back every message, until the parent closes its end."""
    other.close()
    try:
        while True:
            conn.send(conn.recv())
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def bytes_sender(conn, other):
    """For each (size, count) received, sends `count` payloads of `size` bytes."""
    other.close()
    payload = b""
    try:
        while True:
            size, count = conn.recv()
            if len(payload) != size:
                payload = b"\xab" * size
            for _ in range(count):
                conn.send_bytes(payload)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def queue_small_sender(conn, other, q):
    """Puts 0..n-1 on `q` for each n received, until the parent closes its end."""
    other.close()
    try:
        while True:
            n = conn.recv()
            for i in range(n):
                q.put(i)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def queue_bytes_sender(conn, other, q):
    """For each (size, count) received, puts `count` payloads of `size` bytes on `q`
    (the same bytes object each time)."""
    other.close()
    payload = b""
    try:
        while True:
            size, count = conn.recv()
            if len(payload) != size:
                payload = b"\xab" * size
            for _ in range(count):
                q.put(payload)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass


def with_child(target, body, queue=False):
    """Runs `body(conn)` with a forked child running `target` on the other end of a
    duplex Pipe; with `queue`, runs `body(conn, q)` with a Queue the child gets too
    (`target(conn, other_end, q)`). The child is always ended and joined afterwards."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=True)
    extra = (ctx.Queue(),) if queue else ()
    child = ctx.Process(target=target, args=(there, here, *extra), daemon=True)
    child.start()
    there.close()
    try:
        out = body(here, *extra)
    except BaseException:
        child.kill()
        raise
    finally:
        here.close()
        child.join(10)
        if child.exitcode is None:
            child.kill()
            child.join()
        for q in extra:
            q.close()
            q.join_thread()
    if child.exitcode != 0:
        raise RuntimeError(f"child exited with {child.exitcode}")
    return out


def small(args):
    n = args.items
    expected = n * (n - 1) // 2

    def body(conn):
        def run():
            conn.send(n)
            total = 0
            for _ in range(n):
                total += conn.recv()
            if total != expected:
                raise RuntimeError("wrong messages")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_child(small_sender, body)


def pingpong(args):
    def body(conn):
        def run():
            conn.send(7)
            if conn.recv() != 7:
                raise RuntimeError("wrong answer")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_child(echo, body)


def receive_batch(conn, size, count):
    conn.send((size, count))
    for _ in range(count):
        if len(conn.recv_bytes()) != size:
            raise RuntimeError("wrong message length")


def bytes_workload(args):
    def body(conn):
        run = lambda: receive_batch(conn, args.size, args.count)
        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_child(bytes_sender, body)


def sizes_and_counts(args):
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    if len(sizes) != len(counts):
        raise SystemExit("--sizes and --counts differ in length")
    return sizes, counts


def scaling(args):
    sizes, counts = sizes_and_counts(args)

    def body(conn):
        points = []
        for size, count in zip(sizes, counts):
            run = lambda: receive_batch(conn, size, count)
            points.append({"size": size, "count": count, "samples": timed(run, args.warmup, args.iterations)})
        return {"points": points}

    return with_child(bytes_sender, body)


def queue_small(args):
    n = args.items
    expected = n * (n - 1) // 2

    def body(conn, q):
        def run():
            conn.send(n)
            total = 0
            for _ in range(n):
                total += q.get()
            if total != expected:
                raise RuntimeError("wrong items")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_child(queue_small_sender, body, queue=True)


def get_batch(conn, q, size, count):
    conn.send((size, count))
    for _ in range(count):
        if len(q.get()) != size:
            raise RuntimeError("wrong item length")


def queue_bytes(args):
    def body(conn, q):
        run = lambda: get_batch(conn, q, args.size, args.count)
        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_child(queue_bytes_sender, body, queue=True)


def queue_scaling(args):
    sizes, counts = sizes_and_counts(args)

    def body(conn, q):
        points = []
        for size, count in zip(sizes, counts):
            run = lambda: get_batch(conn, q, size, count)
            points.append({"size": size, "count": count, "samples": timed(run, args.warmup, args.iterations)})
        return {"points": points}

    return with_child(queue_bytes_sender, body, queue=True)


WORKLOADS = {
    "small": small,
    "pingpong": pingpong,
    "bytes": bytes_workload,
    "scaling": scaling,
    "queue_small": queue_small,
    "queue_bytes": queue_bytes,
    "queue_scaling": queue_scaling,
}


def main():
    ap = arguments(__doc__, WORKLOADS)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--sizes", default="")
    ap.add_argument("--counts", default="")
    args = ap.parse_args()
    report(args.workload, "fork", WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
