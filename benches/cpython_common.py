"""What the CPython benchmark scripts (benches/cpython_*.py) share: the timing
loop, the command line and the one JSON object each prints on standard output.

Imported by name: the harness runs each script by its path, so the script's
folder (this one) is first on sys.path, in the script and in the children that
spawn and forkserver start (they are given the parent's sys.path). Standard
library only.
"""

import argparse
import json
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
