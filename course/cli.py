"""`course`: the command line of the course.

    course start                     data, lessons and how far you are: where to begin
    course status                    each lesson's exercises: pass / not attempted / wrong
    course data [--names SRC]        the data sets (SRC: embedded, classic, a path or URL)
    course sync 01 --keep py|ipynb   make the .py and .ipynb of a lesson agree again
    course build [--check] [--force] regenerate lessons/ from solutions/ (instructors)
    course nbgrader ...              release, collect and grade with nbgrader (instructors, INSTRUCTORS.md)
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from . import lessons as registry
from .data import DataError
from .grading.integrity import TamperError
from .classroom.cli import add_commands as add_nbgrader_commands
from .classroom.setup import GradingError
from .classroom.start_nbgrader import skip_iri_checker


def cmd_data(args):
    from . import data

    words = data.load_names(args.names)
    train, val, test = data.split(words)
    print(f"names ({args.names}): {len(words):,} names, lengths {min(map(len, words))}-{max(map(len, words))}; "
          f"split 80/10/10 (seed {data.SPLIT_SEED}): {len(train):,} / {len(val):,} / {len(test):,}")
    if args.shakespeare:
        text = data.load_shakespeare(args.shakespeare)
        print(f"shakespeare ({args.shakespeare}): {len(text):,} characters, {len(set(text))} distinct")


def run_checks(numbers, lessons_root, *extra, timeout=600):
    """Run `pytest checks/lessonNN ...` in a subprocess; (returncode, output)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging",  # no log shown
           "--lessons", str(lessons_root), *[f"checks/lesson{n}" for n in numbers], *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=registry.ROOT, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def parse_summary(output, reasons=None):
    """{lesson number: {exercise: status}} from the tables the checks print last; `reasons`, a dict,
    receives {lesson number: why it cannot load} from the line under a table."""
    table, current, last = {}, None, None
    for line in output.splitlines():
        if line.startswith("-") and " lesson " in line:
            last = line.split(" lesson ")[1].split()[0]
            current = table.setdefault(last, {})
        elif current is not None and " exercises pass" in line:
            current = None  # the table ends here; at most a reason follows, then pytest's own summary
        elif current is None and last is not None and line.startswith("  cannot load: "):
            if reasons is not None:
                reasons[last] = line.removeprefix("  cannot load: ")
            last = None
        elif current is not None and line.startswith("  "):
            exercise, status = line.split(None, 1)
            current[exercise] = status.strip()
        else:
            last = None if current is None else last
    return table


def lesson_status(lessons_root=None, reasons=None):
    """Run every available lesson's checks once; {lesson number: {exercise: status}}."""
    root = lessons_root or registry.lessons_dir()
    numbers = [l.number for l in registry.available(root) if (registry.ROOT / "checks" / f"lesson{l.number}").is_dir()]
    return parse_summary(run_checks(numbers, root, "--tb=no")[1], reasons) if numbers else {}


def cmd_status(args, table=None, reasons=None):
    root = registry.lessons_dir()
    reasons = {} if reasons is None else reasons
    table = lesson_status(root, reasons) if table is None else table
    print(f"{'lesson':<14} {'done':>6}  next")
    for lesson in registry.all_lessons():
        results = table.get(lesson.number)
        if results is None:
            state = "not in this folder yet" if not lesson.script(root).exists() else "no checks yet"
            print(f"{lesson.folder:<14} {'':>6}  {state}")
            continue
        done = sum(s == "pass" for s in results.values())
        todo = next(((e, s) for e, s in results.items() if s != "pass"), None)
        nxt = f"{todo[0]} ({todo[1]})" if todo else "all exercises pass"
        if lesson.number in reasons:
            nxt = f"cannot load: {reasons[lesson.number]}"
        print(f"{lesson.folder:<14} {done:>2}/{len(results):<3}  {nxt}")
    return 0


def next_lesson(table):
    """The first lesson with checks whose exercises do not all pass (None: all done)."""
    for lesson in registry.all_lessons():
        results = table.get(lesson.number)
        if results and any(s != "pass" for s in results.values()):
            return lesson
    return None


def cmd_start(args):
    print("LLM From Scratch: from a bigram model to a GPT and its BPE tokenizer.\n")
    cmd_data(argparse.Namespace(names="embedded", shakespeare=None))
    print()
    reasons = {}
    table = lesson_status(registry.lessons_dir(), reasons)
    cmd_status(args, table, reasons)
    lesson = next_lesson(table)
    if lesson is None:
        print("\nEvery lesson with checks passes. Well done.")
        return 0
    results = table[lesson.number]
    verb = "Begin with" if not any(s == "pass" for s in results.values()) else "Go on with"
    todo = next(e for e, s in results.items() if s != "pass")
    print(f"\n{verb} lessons/{lesson.folder}/{lesson.name}.py (or its .ipynb in `jupyter lab`): "
          f"next is {todo}. Then")
    print(f"    pytest checks/lesson{lesson.number}              # what is done, what is wrong")
    print(f"    python lessons/{lesson.folder}/{lesson.name}.py    # run the lesson once it passes")
    return 0


def cmd_build(args):
    from .build import build

    problems = build(check=args.check, force=args.force)
    if problems:
        verb = "are stale: run `course build`" if args.check else "were kept"
        print(f"{len(problems)} file(s) {verb}", file=sys.stderr)
        return 1
    print("lessons/ is up to date" if args.check else "lessons/ rebuilt")
    return 0


def display(path):
    """`path` relative to where the learner is, when it is below; else in full."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def cmd_sync(args):
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    from .build import backup_path, notebook_metadata
    from .cells import differing
    from .loader import LoadError
    from .source import code_fingerprint, remember_agreement

    lesson = registry.get(args.lesson)
    root = registry.lessons_dir()
    src = lesson.script(root) if args.keep == "py" else lesson.notebook(root)
    dst = lesson.notebook(root) if args.keep == "py" else lesson.script(root)
    if not src.exists():
        print(f"{src} does not exist", file=sys.stderr)
        return 1
    nb = jupytext.read(src, fmt="py:percent" if src.suffix == ".py" else None)
    if dst.suffix == ".ipynb":
        try:  # keep the notebook's outputs of the cells that did not change
            nb = combine_inputs_with_outputs(nb, jupytext.read(dst)) if dst.exists() else nb
        except Exception:  # an unreadable notebook: its backup below keeps it
            pass
        for key, value in notebook_metadata().items():  # the pairing, so Jupyter keeps both in step
            nb.metadata.setdefault(key, value)
    if dst.exists():
        try:
            lost = differing(dst, src)
        except (ValueError, KeyError, TypeError, AttributeError):
            lost = ["(unreadable)"]
        backup = backup_path(dst)
        shutil.copy2(dst, backup)
        if lost:
            print(f"{dst.name} had code that is not in {src.name} (in {', '.join(lost)}): it is replaced, "
                  f"and saved in {display(backup)}")
        else:
            print(f"{dst.name} had no code that {src.name} lacks; backed up anyway to {display(backup)}")
    jupytext.write(nb, dst, fmt="ipynb" if dst.suffix == ".ipynb" else "py:percent")
    try:
        agreed = code_fingerprint(src) == code_fingerprint(dst)
    except LoadError:
        agreed = False
    if agreed:
        remember_agreement(lesson, root, code_fingerprint(src))
        print(f"wrote {display(dst)} from {src.name}: the two agree again, and the checks grade what you edit next")
    else:  # pragma: no cover - jupytext round trips py:percent exactly
        print(f"wrote {display(dst)} from {src.name}, but their code still differs: please report this", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    skip_iri_checker()  # nbformat's import, for nbgrader's commands and build: 1.1 -> 0.13 s (see start_nbgrader)
    parser = argparse.ArgumentParser(prog="course", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start", help="what the course is, the data, and your progress").set_defaults(run=cmd_start)
    sub.add_parser("status", help="each lesson's exercises, checked").set_defaults(run=cmd_status)
    p = sub.add_parser("data", help="load and describe the data sets")
    p.add_argument("--names", default="embedded", help="embedded (default), classic, a path or a URL")
    p.add_argument("--shakespeare", default=None, help="also load Shakespeare: embedded, classic, a path or a URL")
    p.set_defaults(run=cmd_data)
    p = sub.add_parser("build", help="regenerate lessons/ from solutions/ (needs the instructor extra)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if lessons/ is stale")
    p.add_argument("--force", action="store_true", help="also replace learner-edited files (backed up first)")
    p.set_defaults(run=cmd_build)
    p = sub.add_parser("sync", help="rewrite one of a lesson's .py/.ipynb from the other (backup first)")
    p.add_argument("lesson", help="lesson number or name, e.g. 01")
    p.add_argument("--keep", choices=["py", "ipynb"], required=True, help="the file whose content wins")
    p.set_defaults(run=cmd_sync)
    add_nbgrader_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (DataError, GradingError, TamperError, KeyError) as e:
        print(f"course: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
