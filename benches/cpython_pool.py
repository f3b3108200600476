"""CPython side of the process-pool workloads: multiprocessing.Pool and
concurrent.futures.ProcessPoolExecutor, 2 workers, fork unless named.

    python3 benches/cpython_pool.py --workload map --items 200000 --warmup 3 --iterations 20

Workloads (--workload):
  lifecycle       Pool(2) create + map 2 items + close/join (--method fork|spawn)
  map             pool.map(double, range(items)), default chunking or --chunksize
  apply           pool.apply_async(double, (1,)).get(), one at a time
  submit          ProcessPoolExecutor.submit(double, 1).result(), one at a time
  imap_unordered  consume pool.imap_unordered(double, range(items), chunksize=1)
  cpu             400 (--items) calls of a ~1 ms busy loop: serially, then pool.map
  memory          PSS of each idle worker of a warmed-up Pool(2) (--method fork|spawn)

Prints one JSON object: {"python": ..., "workload": ..., "samples": [seconds per
run, ...]} (the cpu workload adds "serial" samples and the calibrated "loop_n";
memory prints "pss_kib" instead of timings). Standard library only.
"""

import concurrent.futures
import multiprocessing
import statistics
import time

from cpython_common import START_METHODS, arguments, report, timed


def double(x):
    return x * 2


def spin(n):
    """The CPU-bound item: a fixed number of rounds of integer arithmetic."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


def lifecycle(args):
    ctx = multiprocessing.get_context(args.method)

    def run():
        pool = ctx.Pool(2)
        if pool.map(double, range(2)) != [0, 2]:
            raise RuntimeError("wrong results")
        pool.close()
        pool.join()

    return {"samples": timed(run, max(1, args.warmup), args.iterations)}


def with_pool(args, body):
    pool = multiprocessing.get_context(args.method).Pool(2)
    try:
        return body(pool)
    finally:
        pool.close()
        pool.join()


def map_items(args):
    n = args.items
    expected = n * (n - 1)

    def body(pool):
        def run():
            if args.chunksize:
                out = pool.map(double, range(n), chunksize=args.chunksize)
            else:
                out = pool.map(double, range(n))
            if len(out) != n or sum(out) != expected:
                raise RuntimeError("wrong results")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_pool(args, body)


def apply(args):
    def body(pool):
        def run():
            if pool.apply_async(double, (1,)).get() != 2:
                raise RuntimeError("wrong result")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_pool(args, body)


def submit(args):
    ctx = multiprocessing.get_context(args.method)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:

        def run():
            if ex.submit(double, 1).result() != 2:
                raise RuntimeError("wrong result")

        return {"samples": timed(run, args.warmup, args.iterations)}


def imap_unordered(args):
    n = args.items
    expected = n * (n - 1)

    def body(pool):
        def run():
            total = 0
            for x in pool.imap_unordered(double, range(n), chunksize=1):
                total += x
            if total != expected:
                raise RuntimeError("wrong results")

        return {"samples": timed(run, args.warmup, args.iterations)}

    return with_pool(args, body)


def calibrate(target=1e-3):
    """The loop count for which spin() takes about `target` seconds here."""
    n = 20_000
    times = []
    for _ in range(7):
        t = time.perf_counter()
        spin(n)
        times.append(time.perf_counter() - t)
    return max(1, round(n * target / statistics.median(times)))


def cpu(args):
    loop_n = calibrate()
    items = [loop_n] * args.items

    def serial():
        return [spin(n) for n in items]

    expected = serial()

    def body(pool):
        def parallel():
            if pool.map(spin, items) != expected:
                raise RuntimeError("wrong results")

        # Interleaved round by round, as the Rust side does.
        for _ in range(args.warmup):
            serial()
            parallel()
        serial_samples, pool_samples = [], []
        for _ in range(args.iterations):
            t = time.perf_counter()
            serial()
            serial_samples.append(time.perf_counter() - t)
            t = time.perf_counter()
            parallel()
            pool_samples.append(time.perf_counter() - t)
        return {"samples": pool_samples, "serial": serial_samples, "loop_n": loop_n}

    return with_pool(args, body)


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss line for {pid}")


def memory(args):
    ctx = multiprocessing.get_context(args.method)
    pss = []
    for _ in range(args.iterations):
        pool = ctx.Pool(2)
        # Warm-up: both workers run calls, then the pool sits idle.
        pool.map(double, range(100), chunksize=1)
        time.sleep(0.1)
        workers = multiprocessing.active_children()
        if len(workers) != 2:
            raise RuntimeError(f"expected 2 workers, found {len(workers)}")
        pss.extend(pss_kib(p.pid) for p in workers)
        pool.close()
        pool.join()
    return {"pss_kib": pss}


WORKLOADS = {
    "lifecycle": lifecycle,
    "map": map_items,
    "apply": apply,
    "submit": submit,
    "imap_unordered": imap_unordered,
    "cpu": cpu,
    "memory": memory,
}


def main():
    ap = arguments(__doc__, WORKLOADS)
    ap.add_argument("--method", choices=START_METHODS, default="fork")
    ap.add_argument("--items", type=int, default=0)
    ap.add_argument("--chunksize", type=int, default=0, help="0: CPython's default")
    args = ap.parse_args()
    report(args.workload, args.method, WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
