"""What a notebook check cell costs: the first one in a kernel, and the later ones.

    python extras/benchmarks/check_cell.py [--repeat 9]

Starts a Jupyter kernel in a copy of lesson 01 with the reference `nll`, and
times `check.nll(nll)` inside the kernel, in one run side by side:

- probe:  as a check cell runs it (the kernel's cells loaded in a probe);
- local:  the same check on the function in the kernel itself (`Local`
          handles, the route before issue 20), for scale;
- import: `python -c "import torch"` in a fresh process, the bar's yardstick.

Wall time and CPU time (the kernel's own and its reaped children's, plus the
probes' zygote's own and its reaped children's) are measured in the kernel;
medians of --repeat runs after the first. The first probe run starts the zygote
(its start is in the wall time, not in the CPU time).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TIMED = r'''
import json, resource, time
from course.grading import handles
import os
from course.grading.zygote import zygote
def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    probes = 0.0  # the probes are the zygote's children (detached from the kernel): its own and reaped CPU
    if zygote.pid:
        with open(f"/proc/{zygote.pid}/stat") as fh:
            probes = sum(int(x) for x in fh.read().rsplit(")", 1)[1].split()[11:15]) / os.sysconf("SC_CLK_TCK")
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime + probes
def _time(route):
    g = globals() if route == "probe" else {"check": check, "nll": nll}  # other globals: the Local route
    w, c = time.perf_counter(), _cpu()
    exec("check.nll(nll)", g)
    return time.perf_counter() - w, _cpu() - c
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    from jupyter_client.manager import start_new_kernel

    from course import lessons as registry
    from course.build import read_solution

    lesson = registry.get("01")
    work = Path(tempfile.mkdtemp(prefix="check-cell-"))
    shutil.copytree(registry.ROOT / "lessons" / lesson.folder, work / lesson.folder)
    nll = next(c.source for c in read_solution(lesson.script(registry.solutions_dir())).cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == "nll")
    nll = "\n".join(line for line in nll.splitlines() if "### " not in line)
    os.environ["PYTHONPATH"] = str(ROOT)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(work / lesson.folder))

    def run(code):
        reply = kc.execute_interactive(code, timeout=300, output_hook=lambda m: out.append(m))
        assert reply["content"]["status"] == "ok", reply["content"]

    try:
        out = []
        run("from checks.lesson01 import exercises as check\nimport torch\ntorch.set_num_threads(1)")
        run(nll)
        run(TIMED)
        results = {"probe": [], "local": []}
        for i in range(args.repeat + 1):
            for route in ("probe", "local"):
                out.clear()
                run(f"print(json.dumps(_time({route!r})))")
                text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
                results[route].append(json.loads(text.strip().splitlines()[-1]))
    finally:
        km.shutdown_kernel(now=True)
        shutil.rmtree(work, ignore_errors=True)
    imports = []
    for _ in range(max(3, args.repeat // 3)):
        started = time.perf_counter()
        before = os.times()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        after = os.times()
        imports.append((time.perf_counter() - started,
                        after.children_user + after.children_system - before.children_user - before.children_system))
    print(f"check.nll(nll) in a kernel (lesson 01), {args.repeat} repeats; wall / CPU in seconds")
    for route, runs in results.items():
        first, later = runs[0], runs[1:]
        print(f"  {route:6} first {first[0]:.3f} / {first[1]:.3f}   later (median) "
              f"{statistics.median(w for w, _ in later):.3f} / {statistics.median(c for _, c in later):.3f}")
    print(f"  python -c 'import torch' (median of {len(imports)}): {statistics.median(w for w, _ in imports):.3f} / "
          f"{statistics.median(c for _, c in imports):.3f}")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
