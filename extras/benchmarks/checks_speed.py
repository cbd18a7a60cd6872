"""What a check run costs, against the cost of `python -c "import torch"`.

    python extras/benchmarks/checks_speed.py                  # the table of checks-speed.md
    python extras/benchmarks/checks_speed.py --runs 7 --lessons 01 07 --roots solutions
    python extras/benchmarks/checks_speed.py --phases         # where one run's CPU goes

Each measured command runs in its own process tree; its CPU time is user +
sys of the whole tree, beside its wall time: os.wait4 of the command (every
process it waited for) plus the processes that came to this one as their
subreaper (the probes' zygote detaches itself from the judge with a double
fork; the probes are its children). The
machine is shared and noisy, so no number stands alone: every run of a
command is paired with a run of the baseline, `python -c "import torch"`,
right before it, and the ratio is taken within the pair. Reported: the
medians over `--runs` pairs of the command's CPU and wall seconds, of the
baseline's CPU, and of the pair's CPU ratio.

The commands, for each lesson folder graded (`--roots`: solutions/ and the
blank learner files of lessons/):

    pytest checks/lessonNN --exercise X    one exercise (X: --exercise, else the lesson's costliest)
    pytest checks/lessonNN                 the whole lesson
    course status                          all seven lessons

`--phases` runs one pytest with this file as a plugin (`-p checks_speed`) and
prints the CPU seconds spent before pytest was ready, importing the
conftest (torch and the course), collecting, in each test, and in the
probes (the children reaped by the judge). The budgets of issue 20 are
printed beside the ratios: one exercise 1.5x, a lesson 2x, status 3x.
"""

import argparse
import ctypes
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # --repo: another checkout (the "before" numbers)
BASELINE = [sys.executable, "-c", "import torch"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
BUDGET = {"exercise": 1.5, "lesson": 2.0, "status": 3.0}
# The exercises measured by default in each lesson: the costliest of its checks (judge and probe CPU per
# test from --phases --whole on solutions/, 2026-12-03, before and after the changes of checks-speed.md).
COSTLIEST = {"01": ["sample_name"], "02": ["sgd_step"], "03": ["recompute_population_stats"],
             "04": ["backward_loss"], "05": ["CausalConv1d"], "06": ["attention_head", "gpt_forward"],
             "07": ["merges_from_ranks", "encode_ordinary"]}


def environment(extra=None):
    """This environment as a learner's shell has it: Python writes its bytecode caches (this project's
    sessions set PYTHONDONTWRITEBYTECODE, which makes pytest rewrite and compile hypothesis and the
    checks on every run), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" or KEEP_ENV}
    return {**env, **(extra or {})}


KEEP_ENV = False


def become_subreaper():
    """Orphaned descendants of the commands (the detached zygote) come to this process (Linux)."""
    PR_SET_CHILD_SUBREAPER = 36
    if not ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        raise SystemExit("cannot become a subreaper: the zygote's CPU would not be counted")


def reap_orphans(seconds=60):
    """CPU seconds of the processes that came here as orphans (the zygote, with the probes it reaped),
    waiting until they have ended (the zygote ends when the judge's end of its socket closes)."""
    total, until = 0.0, time.monotonic() + seconds
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return total
        if pid:
            total += usage.ru_utime + usage.ru_stime
        elif time.monotonic() > until:
            raise SystemExit("a process of the measured command was still alive a minute after it ended")
        else:
            time.sleep(0.01)


def measure(cmd, env=None):
    """(CPU seconds of the whole process tree, wall seconds, exit status) of one run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return usage.ru_utime + usage.ru_stime + reap_orphans(), wall, proc.returncode


def paired(cmd, runs, env=None):
    """Medians over `runs` pairs (baseline, command): command CPU and wall, baseline CPU, CPU ratio."""
    rows = []
    for _ in range(runs):
        base_cpu, base_wall, _ = measure(BASELINE)
        cpu, wall, code = measure(cmd, env)
        rows.append((cpu, wall, base_cpu, cpu / base_cpu, wall / base_wall, code))
    med = [statistics.median(column) for column in zip(*rows)]
    return {"cpu": med[0], "wall": med[1], "base": med[2], "ratio": med[3], "wall_ratio": med[4],
            "spread": (min(r[3] for r in rows), max(r[3] for r in rows)), "codes": sorted({r[5] for r in rows})}


def exercises_of(number):
    """The exercise names of a lesson, in order, from its test file (one test_<name> per exercise)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "checks" / f"lesson{number}").glob("test_*.py")))
    return [line.split("(")[0].removeprefix("def test_") for line in text.splitlines() if line.startswith("def test_")]


def commands(args):
    """(kind, lesson root, label, argv, env) of every command measured."""
    out = []
    for root in args.roots:
        folder = str(ROOT / root)
        env = environment({"COURSE_LESSONS": folder})
        for number in args.lessons:
            names = exercises_of(number) if args.all_exercises else [args.exercise] if args.exercise else COSTLIEST[number]
            for name in names:
                out.append(("exercise", root, f"pytest checks/lesson{number} --exercise {name}",
                            [*PYTEST, "--lessons", folder, f"checks/lesson{number}", "--exercise", name], env))
            if not args.exercises_only:
                out.append(("lesson", root, f"pytest checks/lesson{number}",
                            [*PYTEST, "--lessons", folder, f"checks/lesson{number}"], env))
        if not args.exercises_only:
            out.append(("status", root, "course status", [sys.executable, "-m", "course", "status"], env))
    return out


def table(args):
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start; medians of {args.runs} pairs (baseline right before each run)")
    print("| root | command | CPU s | wall s | baseline CPU s | CPU ratio (min-max) | budget | wall ratio |")
    print("|---|---|---|---|---|---|---|---|")
    todo = commands(args)
    for kind, root, label, cmd, env in todo:  # once unmeasured: the bytecode caches are written
        if not args.no_warmup and (kind != "exercise" or args.exercises_only):
            measure(cmd, env)
    for kind, root, label, cmd, env in todo:
        m = paired(cmd, args.runs, env)
        flag = "" if m["ratio"] <= BUDGET[kind] else " **over**"
        codes = "" if m["codes"] in ([0], [1]) else f" (exit {m['codes']})"
        print(f"| {root} | `{label}`{codes} | {m['cpu']:.2f} | {m['wall']:.2f} | {m['base']:.2f} | "
              f"{m['ratio']:.2f}x ({m['spread'][0]:.2f}-{m['spread'][1]:.2f}) | {BUDGET[kind]}x{flag} | "
              f"{m['wall_ratio']:.2f}x |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


# ----------------------------------------------------------- --phases: this file as a pytest plugin

_marks = []


_zygote_seen = [0.0]  # CPU of the zygote's tree when last sampled; its exit is reaped by the driver


def _live_descendants_cpu():
    """CPU seconds of the processes still alive below this one and below the probes' zygote (which is
    detached from the judge; the probes are its children), with their reaped children."""
    parent, times = {}, {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent[int(name)] = int(fields[1])
        times[int(name)] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    module = sys.modules.get("course.grading.zygote")
    zygote = module.zygote.pid if module and module.zygote.sock is not None else None
    total, in_zygote, me = 0.0, 0.0, os.getpid()
    for pid in parent:
        up = pid if pid == zygote else parent[pid]
        for _ in range(64):  # up the tree to this process or the zygote, or to the root
            if up <= 1 or up in (me, zygote):
                break
            up = parent.get(up, 0)
        total += times[pid] if up in (me, zygote) else 0.0
        in_zygote += times[pid] if up == zygote else 0.0
    if zygote:
        _zygote_seen[0] = in_zygote
    elif module:  # closed at the session's finish: counted as last seen (the driver reaps the rest)
        total += _zygote_seen[0]
    return total


def _cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime + _live_descendants_cpu()


def _mark(name):
    _marks.append((name, *_cpu()))


def pytest_configure(config):  # the conftest (torch, the course) is imported by now
    _mark("plugins and the conftest loaded (torch, the course)")


def pytest_collection_finish(session):
    _mark("collected")


def pytest_runtest_logfinish(nodeid, location):
    _mark(f"ran {nodeid.split('::')[-1]}")


def pytest_unconfigure(config):
    _mark("closed (probes reaped)")
    lines, last = [], (0.0, 0.0)
    for name, me, kids in _marks:
        lines.append(f"  {me - last[0]:6.3f} s judge  {kids - last[1]:6.3f} s probes   {name}")
        last = (me, kids)
    total = last[0] + last[1]
    with open(os.environ.get("CHECKS_SPEED_PHASES", "/dev/stderr"), "a") as out:
        out.write("\n".join(lines) + f"\n  {total:6.3f} s in all (user+sys)\n# zygote seen {_zygote_seen[0]}\n")


_mark("python and pytest started")


def phases(args):
    env = environment({"PYTHONPATH": str(Path(__file__).parent)})
    for root in args.roots:
        for number in args.lessons:
            extra = ["--exercise", args.exercise] if args.exercise else []
            with_exercise = [] if args.whole else extra or ["--exercise", COSTLIEST[number][0]]
            cmd = [*PYTEST, "-p", "checks_speed", "--lessons", str(ROOT / root), f"checks/lesson{number}", *with_exercise]
            print(f"$ {shlex.join(cmd[1:])}", flush=True)
            base = statistics.median(measure(BASELINE)[0] for _ in range(3))
            measure(cmd, env)  # once unmeasured: the bytecode caches are written
            proc = subprocess.run(cmd, cwd=ROOT, env={**env, "CHECKS_SPEED_PHASES": "/dev/stdout"},
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            zygote = reap_orphans()  # its CPU in all; the plugin saw all but its end
            lines = [l for l in proc.stdout.splitlines() if l.startswith("  ") and " s " in l]
            seen = next((float(l.split()[-1]) for l in proc.stdout.splitlines() if l.startswith("# zygote seen")), 0.0)
            total = float(lines.pop().split()[0]) + zygote - seen
            lines.append(f"  {0:6.3f} s judge  {zygote - seen:6.3f} s probes   the zygote's end (reaped here)")
            print("\n".join(lines) + f"\n  {total:6.3f} s in all (user+sys)")
            print(f"  (python -c 'import torch': {base:.3f} s, median of 3 right before)\n", flush=True)


def main():
    global ROOT, KEEP_ENV
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="pairs (baseline, command) per command; medians (default 5)")
    p.add_argument("--lessons", nargs="+", default=[f"{n:02d}" for n in range(1, 8)])
    p.add_argument("--roots", nargs="+", default=["solutions", "lessons"], help="lesson folders graded")
    p.add_argument("--exercise", help="the exercise to measure in each lesson (default: its costliest)")
    p.add_argument("--all-exercises", action="store_true", help="measure every exercise of each lesson")
    p.add_argument("--exercises-only", action="store_true", help="no whole lessons, no course status")
    p.add_argument("--phases", action="store_true", help="where the CPU of one pytest run goes")
    p.add_argument("--whole", action="store_true", help="with --phases: the whole lesson, not one exercise")
    p.add_argument("--repo", type=Path, help="measure the checks of this checkout (default: this one)")
    p.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set")
    p.add_argument("--no-warmup", action="store_true", help="no unmeasured first run (the caches are written)")
    args = p.parse_args()
    become_subreaper()
    KEEP_ENV = args.keep_env
    if args.repo:
        ROOT = args.repo.resolve()
    args.lessons = [f"{int(n):02d}" for n in args.lessons]
    phases(args) if args.phases else table(args)


if __name__ == "__main__":
    main()
