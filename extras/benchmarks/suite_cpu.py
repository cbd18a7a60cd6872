"""CPU per test of the whole suite: a pytest plugin for a serial run on an otherwise idle machine.

    PYTHONPATH=extras/benchmarks python -m pytest -p suite_cpu -n 0 tests        # writes suite-cpu.json
    python extras/benchmarks/suite_cpu.py suite-cpu.json                          # the table

Each test (set-up, call and teardown) is charged the busy time of the whole machine while it ran
(/proc/stat), so the kernels, judges, zygotes and nbgrader processes it started count, detached or
not: what os.wait4 or /usr/bin/time miss. Only meaningful serially, with nothing else running.
Under xdist (`-n 3`) each worker writes its own file (suite-cpu.json.gw0, ...) and the CPU column
means nothing, but the start times give the run's timeline: `python suite_cpu.py --timeline FILES`.
"""

import json
import os
import sys
import time
from collections import defaultdict

import pytest

OUT = os.path.abspath(os.environ.get("SUITE_CPU_OUT", "suite-cpu.json"))  # read now: grading trims os.environ
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_rows = []


def busy_seconds():
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu, wall, start = busy_seconds(), time.monotonic(), time.time()
    yield
    _rows.append((item.nodeid, busy_seconds() - cpu, time.monotonic() - wall, start, WORKER))


def pytest_sessionfinish(session):
    if _rows or not WORKER:
        with open(OUT + (f".{WORKER}" if WORKER else ""), "w") as f:
            json.dump(_rows, f)


def timeline(rows, step=30):
    """Per `step` seconds of the run: how many tests were running (workers busy) on average."""
    t0 = min(r[3] for r in rows)
    end = max(r[3] + r[2] for r in rows)
    lines = []
    for a in range(0, int(end - t0) + 1, step):
        lo, hi = t0 + a, t0 + a + step
        busy = sum(max(0.0, min(hi, r[3] + r[2]) - max(lo, r[3])) for r in rows) / step
        running = sorted({r[0].split("::")[-1][:50] for r in rows if r[3] < hi and r[3] + r[2] > lo and r[2] > 10})
        lines.append(f"{a:4d}-{a + step:<4d} s  {busy:4.2f} workers busy  " + ", ".join(running))
    return "\n".join(lines)


def table(rows, top=25):
    files = defaultdict(lambda: [0.0, 0.0, 0])
    for nodeid, cpu, wall, *_ in rows:
        f = files[nodeid.split("::")[0]]
        f[0], f[1], f[2] = f[0] + cpu, f[1] + wall, f[2] + 1
    lines = [f"{len(rows)} tests: {sum(r[1] for r in rows):.0f} s of CPU, {sum(r[2] for r in rows):.0f} s of wall",
             "", "| CPU s | wall s | tests | file |", "| ---: | ---: | ---: | --- |"]
    lines += [f"| {c:.1f} | {w:.1f} | {n} | {name} |" for name, (c, w, n) in
              sorted(files.items(), key=lambda kv: -kv[1][0])[:top]]
    lines += ["", "| CPU s | wall s | test |", "| ---: | ---: | --- |"]
    lines += [f"| {c:.1f} | {w:.1f} | {name} |" for name, c, w, *_ in sorted(rows, key=lambda r: -r[1])[:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--timeline":
        print(timeline([row for path in sys.argv[2:] for row in json.load(open(path))]))
    else:
        print(table(json.load(open(sys.argv[1]))))
