"""`course nbgrader ...`: the instructors' commands, on the course CLI (INSTRUCTORS.md)."""

from pathlib import Path

from .. import lessons as registry
from .autograde import LEARNER_TIMEOUT
from .collect import collect
from .grade import CHECK_TIMEOUT, JUDGE_BUDGET, grade
from .parallel import default_jobs
from .release import release
from .setup import CELL_TIMEOUT, DEFAULT_DIR, gradable, init, points_table

USAGE = """\
    course nbgrader init [--timeout S]             the course folder: config, grading kernel, source/
    course nbgrader release [LESSON ...]           nbgrader generate_assignment -> release/ (checked for leaks)
    course nbgrader collect LESSON SUBMISSIONS     SUBMISSIONS/LEARNER/<name>.py|.ipynb -> submitted/, checked
    course nbgrader grade LESSON [SUBMISSIONS]     (collect,) autograde, feedback, grades.csv, reports/
        [--jobs N] [--feedback full|verdicts] [--cluster local|tcp://HOST:8786]
    course nbgrader report LESSON                  the class's mistakes per exercise: reports/NN_name-mistakes.html
    course nbgrader points                         the graded exercises and points of each lesson (Markdown)
All take --dir DIR (default: course-nbgrader/ at the top of the repository)."""


def _lessons(keys):
    return [registry.get(k) for k in keys] if keys else gradable()


def _cmd_init(args):
    init(args.dir, timeout=args.timeout)


def _cmd_release(args):
    release(args.dir, _lessons(args.lessons))


def _cmd_collect(args):
    results = collect(args.submissions, registry.get(args.lesson), args.dir)
    return 0 if all(s.gradable for s in results.values()) else 2


def _cmd_grade(args):
    outcomes = grade(registry.get(args.lesson), args.dir, submissions=args.submissions,
                     learners=args.learner or None, learner_timeout=args.learner_timeout,
                     check_timeout=args.check_timeout, memory_gb=args.memory_limit, jobs=args.jobs,
                     feedback=args.feedback, cluster=args.cluster, budget=args.judge_budget)
    return 0 if all(o.status == "graded" for o in outcomes.values()) else 2


def _cmd_report(args):
    import json

    from .mistakes import summarise, verdicts_path, write
    from .setup import exercises

    lesson = registry.get(args.lesson)
    graded = [(e.name, e.points) for e in exercises(lesson)]
    try:
        page = write(args.dir, lesson, graded)
    except FileNotFoundError as e:
        print(e)
        return 2
    table = summarise(json.loads(verdicts_path(args.dir, lesson).read_text()), graded)
    for name, row in table.items():
        print(f"{name:<24} {row['passed']:>4} of {row['graded']} passed")
        for key, who in list(row["mistakes"].items())[:3]:
            print(f"    {len(who):>4}  {key[:100]}")
    print(f"the whole report: {page} (and {page.with_suffix('.csv').name})")
    return 0


def _cmd_points(args):
    print(points_table(), end="")


def add_commands(sub):
    """Register `course nbgrader ...` on the course CLI's subparsers."""
    import argparse

    parser = sub.add_parser("nbgrader", help="instructors: release, collect and grade lessons with nbgrader",
                            description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="nbgrader_command", required=True)

    def command(name, run, help):
        p = commands.add_parser(name, help=help)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the nbgrader course folder")
        p.set_defaults(run=run)
        return p

    p = command("init", _cmd_init, "write the course folder: nbgrader_config.py, grading kernel, source/")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    p = command("release", _cmd_release, "nbgrader generate_assignment for lessons (default: all in solutions/)")
    p.add_argument("lessons", nargs="*", help="lesson numbers or names, e.g. 01")
    p = command("collect", _cmd_collect, "check learners' files and put them into submitted/")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    p.add_argument("submissions", type=Path, help="a folder with one subfolder per learner")
    p = command("grade", _cmd_grade, "autograde, feedback and grades.csv for a lesson")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    p.add_argument("submissions", type=Path, nargs="?", help="collect this folder first")
    p.add_argument("--learner", action="append", help="grade only this learner (repeatable)")
    p.add_argument("--learner-timeout", type=int, default=LEARNER_TIMEOUT,
                   help="seconds for one learner's whole notebook (default %(default)s)")
    p.add_argument("--check-timeout", type=float, default=CHECK_TIMEOUT,
                   help="seconds for the judge's check of one exercise (default %(default)s)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GB",
                   help="memory learner code may allocate (default $COURSE_MEMORY_LIMIT_GB or 4)")
    p.add_argument("--judge-budget", type=float, default=JUDGE_BUDGET, metavar="SECONDS",
                   help="seconds for all of one learner's checks; the exercises after it are timeout "
                        "(default %(default)s)")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="learners judged, and with full feedback their notebooks run by nbgrader, side by side "
                        "(default: the number of cores, %(default)s)")
    p.add_argument("--feedback", choices=("full", "verdicts"), default="full",
                   help="full: nbgrader runs each notebook (outputs, plots); verdicts: no run, the judge's "
                        "verdicts under each graded cell (much faster)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="judge on a Dask cluster: `local` (worker processes here) or tcp://SCHEDULER:8786")
    p = command("report", _cmd_report, "the class's mistakes in a graded lesson: an HTML page and a CSV")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    command("points", _cmd_points, "print the table of graded exercises and points")
