"""CPython side of the start + join workload: multiprocessing.Process start + join
of a function that does nothing, under one start method.

    python3 benches/cpython_startup.py --method fork --warmup 20 --iterations 200

Prints one JSON object: {"python": ..., "workload": "start_join", "method": ...,
"samples": [seconds per start + join, ...]}. Standard library only.
"""

import argparse
import json
import multiprocessing
import platform
import time


def noop():
    pass


def start_join(ctx):
    p = ctx.Process(target=noop)
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"child exited with {p.exitcode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=["fork", "forkserver", "spawn"], required=True)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=100)
    args = ap.parse_args()

    ctx = multiprocessing.get_context(args.method)
    # At least one untimed run: it starts the fork server (lazily started, as in mproc).
    for _ in range(max(1, args.warmup)):
        start_join(ctx)
    samples = []
    for _ in range(args.iterations):
        t = time.perf_counter()
        start_join(ctx)
        samples.append(time.perf_counter() - t)

    print(json.dumps({
        "python": platform.python_version(),
        "workload": "start_join",
        "method": args.method,
        "samples": samples,
    }))


if __name__ == "__main__":
    main()
