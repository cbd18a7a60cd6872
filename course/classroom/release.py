"""Release a lesson: nbgrader generate_assignment, refused when it leaks.

The released notebook is what learners receive. It is checked after every
release for solution text, hidden tests and stray files; a leaking release is
removed before anyone can hand it out.
"""

import shutil
from pathlib import Path

from ..build import MARKERS
from .setup import (DEFAULT_DIR, GradingError, exercises, gradable, run_nbgrader, say, solution_notebook, tail,
                    write_config, write_source)


def check_release(course_dir, lesson, solutions_root=None):
    """Problems of the released lesson: files other than the notebook, solution text, hidden tests."""
    folder = Path(course_dir) / "release" / lesson.folder
    problems = []
    files = [p for p in folder.rglob("*") if p.is_file()]
    extra = [p.name for p in files if p.suffix != ".ipynb"]
    if extra:
        problems.append(f"release/{lesson.folder} holds files that are not notebooks: {extra}")
    secrets = solution_lines(lesson, solutions_root)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{path.name} contains {marker!r}")
        if path.suffix == ".ipynb":
            import nbformat

            code = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
            leaked = sorted({line for line in code.splitlines() if line.strip() in secrets})
            if leaked:
                problems.append(f"{path.name} contains solution or hidden-test lines: {leaked[:3]}")
    return problems


def solution_lines(lesson, solutions_root=None):
    """Stripped lines that occur only inside solution or hidden-test regions of the lesson's source."""
    nb = solution_notebook(lesson, solutions_root)
    inside, outside = set(), set()
    for cell in nb.cells:
        region = None
        for line in cell.source.splitlines():
            text = line.strip()
            if text.startswith("### BEGIN "):
                region = text
                continue
            if text.startswith("### END "):
                region = None
                continue
            (inside if region else outside).add(text)
    return {line for line in inside - outside if line and not line.startswith("#")}


def release(course_dir=DEFAULT_DIR, lessons=None, log=say):
    """Refresh source/ from solutions/ and run nbgrader generate_assignment; refuse a leaking release."""
    if not (Path(course_dir) / "nbgrader_config.py").is_file():
        write_config(course_dir)
    for lesson in lessons or gradable():
        write_source(course_dir, lesson)
        code, out = run_nbgrader(course_dir, "generate_assignment", lesson.folder, "--force")
        if code != 0:
            raise GradingError(f"nbgrader generate_assignment {lesson.folder} failed:\n{tail(out)}")
        problems = check_release(course_dir, lesson)
        if problems:
            shutil.rmtree(Path(course_dir) / "release" / lesson.folder)
            raise GradingError(f"release/{lesson.folder} removed, it leaked: " + "; ".join(problems))
        log(f"released {lesson.folder}: release/{lesson.folder}/{lesson.name}.ipynb "
            f"({len(exercises(lesson))} graded exercises, {sum(e.points for e in exercises(lesson)):g} points)")
