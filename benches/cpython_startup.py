"""CPython side of the start + join workload: multiprocessing.Process start + join
of a function that does nothing, under one start method.

    python3 benches/cpython_startup.py --method fork --warmup 20 --iterations 200

Prints one JSON object: {"python": ..., "workload": "start_join", "method": ...,
"samples": [seconds per start + join, ...]}. Standard library only.
"""

import multiprocessing

from cpython_common import START_METHODS, arguments, report, timed


def noop():
    pass


def start_join(ctx):
    p = ctx.Process(target=noop)
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"child exited with {p.exitcode}")


def main():
    ap = arguments(__doc__, warmup=10, iterations=100)
    ap.add_argument("--method", choices=START_METHODS, required=True)
    args = ap.parse_args()

    ctx = multiprocessing.get_context(args.method)
    # At least one untimed run: it starts the fork server (lazily started, as in mproc).
    samples = timed(lambda: start_join(ctx), max(1, args.warmup), args.iterations)
    report("start_join", args.method, {"samples": samples})


if __name__ == "__main__":
    main()
