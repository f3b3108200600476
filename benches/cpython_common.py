"""What the CPython benchmark scripts (benches/cpython_*.py) share: the timing
loop, the command line and the one JSON object each prints on standard output.

Imported by name: the harness runs each script by its path, so the script's
folder (this one) is first on sys.path, in the script and in the children that
spawn and forkserver start (they are given the parent's sys.path). Standard
library only.
"""

import argparse
import json
import multiprocessing
import platform
import time

START_METHODS = ["fork", "forkserver", "spawn"]


def timed(run, warmup, iterations):
    """Seconds per call of `run()`: `iterations` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t)
    return samples


def arguments(doc, workloads=None, warmup=3, iterations=20):
    """A parser described by the first line of `doc`, with --warmup and --iterations
    (what the harness passes every script) and, given `workloads`, a required
    --workload naming one of them."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    if workloads is not None:
        ap.add_argument("--workload", choices=sorted(workloads), required=True)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--iterations", type=int, default=iterations)
    return ap


def report(workload, method, results):
    """Prints the JSON object the harness reads: {"python": ..., "workload": ...,
    "method": ..., then `results` ("samples": [seconds per run, ...], ...)}."""
    out = {"python": platform.python_version(), "workload": workload, "method": method}
    out.update(results)
    print(json.dumps(out))


# How long a child may take to end once its work is done.
JOIN_TIMEOUT = 10


class Children:
    """Forked children running `target(conn, other, *args)` for each tuple of
    `args_list`, each with a duplex Pipe (`conn` its end, `other` the parent's,
    which it closes); always ended and joined on leaving the `with` block, killed
    on errors."""

    def __init__(self, target, args_list):
        ctx = multiprocessing.get_context("fork")
        self.conns, self.procs = [], []
        try:
            for args in args_list:
                here, there = ctx.Pipe(duplex=True)
                p = ctx.Process(target=target, args=(there, here, *args), daemon=True)
                p.start()
                there.close()
                self.conns.append(here)
                self.procs.append(p)
        except BaseException:
            self.close(failed=True)
            raise

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self.close(failed=kind is not None)

    def close(self, failed):
        for c in self.conns:
            c.close()
        for p in self.procs:
            if failed:
                p.kill()
            p.join(JOIN_TIMEOUT)
            if p.exitcode is None:
                p.kill()
                p.join()
        if not failed and any(p.exitcode != 0 for p in self.procs):
            raise RuntimeError(f"a child exited with {[p.exitcode for p in self.procs]}")
