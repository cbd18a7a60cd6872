"""What `course nbgrader grade` costs per learner, and how it grows with the class (issue 22).

    python extras/benchmarks/grading.py --sizes 10 50 --jobs 1 2 --feedback verdicts full
    python extras/benchmarks/grading.py --sizes 200 --jobs 2 --feedback verdicts
    python extras/benchmarks/grading.py --table            # grading.md's table from the results file
    python extras/benchmarks/grading.py --profile 20       # cProfile of one verdicts-only batch, in-process

A class of synthetic learners of lesson 01, a quarter each of: the reference
solution (full), the learner's blank file, a partial file (some exercises
solved, a different subset each), and a wrong file (the reference with one
classic mistake of tests/wrong/lesson01.py appended to the exercise's cell
as a new definition of its name, each variant in turn). Each run gets a
fresh nbgrader course folder (init + release, not timed), then one
subprocess collects and grades; the subprocess times collect and grade
apart (wall, and CPU of itself and its reaped children), and this process
takes the whole subprocess's wall and CPU (user + sys, RUSAGE_CHILDREN
around it: kernels, probes, judge processes and zygotes included, since
each is reaped by its parent, by the grader as subreaper, or, the detached zygote,
by this process as subreaper). The load
average is recorded at each run: the machine is shared.
"""

import argparse
import inspect
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).with_name("grading.jsonl")


def cpu_seconds():
    """User + sys of this process and of every child it has reaped."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def reap_orphans(seconds=60):
    """Wait for every process that came to this subreaper (the zygote ends when the grader is gone, its probes
    with it), so that their CPU is in RUSAGE_CHILDREN; returns how many."""
    count, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            time.sleep(0.1)
        else:
            count += 1
    raise SystemExit("a process of the grading run was still alive a minute after it ended")


def make_class(root, size):
    """{learner: kind}; writes root/<learner>/bigram.py for each of `size` learners."""
    from course import lessons as registry
    from course.classroom.setup import exercises
    from tests.nbgrader_learners import _cells, py_text, solved, write
    from tests.wrong import lesson01 as wrong

    lesson = registry.get("01")
    names = [e.name for e in exercises(lesson)]
    variants = [(ex, v) for ex, vs in wrong.WRONG.items() for v in vs]
    kinds = {}
    for i in range(size):
        learner, kind = f"s{i:03d}", ["full", "blank", "partial", "wrong"][i % 4]
        if kind == "full":
            nb = solved(lesson, "all")
        elif kind == "blank":
            nb = solved(lesson, set())
        elif kind == "partial":
            nb = solved(lesson, set(random.Random(i).sample(names, 1 + i % (len(names) - 1))))
        else:
            exercise, variant = variants[(i // 4) % len(variants)]
            nb = solved(lesson, "all")
            source = inspect.getsource(variant).replace(f"def {variant.__name__}(", f"def {exercise}(", 1)
            _cells(nb)[exercise].source += "\n\n\n" + source
            kind = f"wrong:{variant.__name__}"
        write(root / learner, "bigram.py", py_text(nb))
        kinds[learner] = kind
    return kinds


def one_run(course_dir, submissions, jobs, feedback):
    """In the subprocess: collect, then grade; prints the phases' wall and CPU as JSON."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    from course import lessons as registry
    from course.classroom.collect import collect
    from course.classroom.grade import grade

    quiet = open(Path(course_dir) / "bench.log", "w")
    log = lambda text: print(text, file=quiet, flush=True)  # noqa: E731
    lesson = registry.get("01")
    t1, c1 = time.perf_counter(), cpu_seconds()
    collect(submissions, lesson, course_dir, log=log)
    t2, c2 = time.perf_counter(), cpu_seconds()
    outcomes = grade(lesson, course_dir, jobs=jobs, feedback=feedback, log=log)
    t3, c3 = time.perf_counter(), cpu_seconds()
    scores = {learner: o.score for learner, o in outcomes.items()}
    print(json.dumps({"import_wall": t1 - t0, "import_cpu": c1 - c0, "collect_wall": t2 - t1, "collect_cpu": c2 - c1,
                      "grade_wall": t3 - t2, "grade_cpu": c3 - c2, "scores": scores}))


def measure(size, jobs, feedback, keep=False):
    """One fresh course folder and class; the whole grading subprocess timed from outside."""
    from course import lessons as registry
    from course.classroom.release import release
    from course.classroom.setup import init
    from course.grading import processes

    work = Path(tempfile.mkdtemp(prefix=f"bench-{size}-{jobs}-{feedback}-"))
    course_dir, submissions = work / "course", work / "submissions"
    kinds = make_class(submissions, size)
    quiet = lambda text: None  # noqa: E731
    init(course_dir, lessons=[registry.get("01")], log=quiet)
    release(course_dir, [registry.get("01")], log=quiet)
    load_before = os.getloadavg()[0]
    processes.set_subreaper()  # the zygote is detached (double fork): it comes here, is reaped here, and counts
    t0, c0 = time.perf_counter(), cpu_seconds()
    done = subprocess.run([sys.executable, __file__, "--one", str(course_dir), str(submissions), str(jobs), feedback],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    orphans = reap_orphans()
    cpu = cpu_seconds() - c0
    if done.returncode != 0:
        raise SystemExit(f"grading failed ({work}):\n{done.stderr[-3000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    scores = phases.pop("scores")
    # A sanity check of the class, not of the grader (its tests do that). A partial learner may score 0: a
    # reference sgd_step calls the learner's own neural_nll, which a learner who solved only sgd_step left blank.
    odd = [x for x, k in kinds.items() if (k == "full" and scores[x] != 13) or (k == "blank" and scores[x] != 0)
           or (k.startswith("wrong") and scores[x] >= 13)]
    row = {"size": size, "jobs": jobs, "feedback": feedback, "wall": wall, "cpu": cpu, "reaped": orphans, **phases,
           "load_before": load_before, "load_after": os.getloadavg()[0], "mean_score": sum(scores.values()) / size,
           "unexpected_scores": odd, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "commit": subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip()}
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return row


def fit(points):
    """Least squares y = a + b * n over [(n, y)]: (fixed part a, per-learner slope b)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def table(rows):
    """The markdown table of grading.md (medians where a configuration was run more than once)."""
    import statistics

    groups = {}
    for r in rows:
        groups.setdefault((r["commit"], r["feedback"], r["jobs"], r["size"]), []).append(r)
    lines = ["| commit | feedback | jobs | learners | runs | wall s | CPU s | CPU s / learner | wall s / learner "
             "| collect CPU s | grade CPU s | rest CPU s | load avg |", "|" + "---|" * 13]
    for (commit, feedback, jobs, size), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3],
                                                                                      kv[0][2])):
        for r in rs:  # what the grading process did not reap itself: the detached zygote and its probes
            r["zygote_cpu"] = r["cpu"] - r["import_cpu"] - r["collect_cpu"] - r["grade_cpu"]
        m = {k: statistics.median(r[k] for r in rs)
             for k in ("wall", "cpu", "grade_cpu", "collect_cpu", "zygote_cpu", "load_before")}
        lines.append(f"| {commit} | {feedback} | {jobs} | {size} | {len(rs)} | {m['wall']:.0f} | {m['cpu']:.1f} | "
                     f"{m['cpu'] / size:.2f} | {m['wall'] / size:.2f} | {m['collect_cpu']:.1f} | {m['grade_cpu']:.1f} "
                     f"| {m['zygote_cpu']:.1f} | {m['load_before']:.1f} |")
    lines.append("")
    for commit, feedback, jobs in sorted({k[:3] for k in groups}):
        sizes = {k[3]: groups[k] for k in groups if k[:3] == (commit, feedback, jobs)}
        if len(sizes) >= 2:
            for what in ("cpu", "wall"):
                a, b = fit([(s, statistics.median(r[what] for r in rs)) for s, rs in sizes.items()])
                lines.append(f"- {commit} {feedback} --jobs {jobs}: {what} = {a:.0f} s + {b:.2f} s x learners "
                             f"(sizes {sorted(sizes)})")
    return "\n".join(lines)


def profile(size):
    """cProfile (CPU time) of collect + grade (verdicts, --jobs 1) in this process; probes are not in it."""
    import cProfile
    import pstats

    from course import lessons as registry
    from course.classroom.collect import collect
    from course.classroom.grade import grade
    from course.classroom.release import release
    from course.classroom.setup import init

    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    make_class(work / "submissions", size)
    lesson, quiet = registry.get("01"), (lambda text: None)
    init(work / "course", lessons=[lesson], log=quiet)
    release(work / "course", [lesson], log=quiet)
    profiler = cProfile.Profile(time.process_time)  # CPU seconds of this process: the machine is shared
    profiler.enable()
    collect(work / "submissions", lesson, work / "course", log=quiet)
    grade(lesson, work / "course", jobs=1, feedback="verdicts", log=quiet)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.dump_stats(str(work / "grade.prof"))
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(20)
    print(f"profile: {work / 'grade.prof'}; children's CPU (probes) is not in it: {cpu_seconds():.1f} s all told")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--feedback", nargs="+", default=["verdicts", "full"], choices=["verdicts", "full"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep each run's course folder")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--results", nargs="+", default=[RESULTS], help="for --table: the results files to read")
    parser.add_argument("--profile", type=int, metavar="LEARNERS")
    parser.add_argument("--one", nargs=4, metavar=("COURSE", "SUBMISSIONS", "JOBS", "FEEDBACK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        course_dir, submissions, jobs, feedback = args.one
        return one_run(course_dir, submissions, int(jobs), feedback)
    if args.table:
        return print(table([json.loads(line) for path in args.results for line in Path(path).read_text().splitlines()
                            if line.strip()]))
    if args.profile:
        return profile(args.profile)
    for _ in range(args.runs):
        for feedback in args.feedback:
            for size in args.sizes:
                for jobs in args.jobs:
                    row = measure(size, jobs, feedback, keep=args.keep)
                    with open(RESULTS, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(f"{feedback:8} jobs {jobs} n {size:3}: wall {row['wall']:6.0f} s  CPU {row['cpu']:6.0f} s "
                          f"({row['cpu'] / size:.2f} s/learner)  load {row['load_before']:.1f}  "
                          f"unexpected {row['unexpected_scores']}", flush=True)


if __name__ == "__main__":
    main()
