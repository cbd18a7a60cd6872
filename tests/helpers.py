"""Shared by the repository's tests: run the checks or a lesson in a subprocess."""

import os
import subprocess
import sys

from course import lessons as registry

ROOT = registry.ROOT


def checked_lessons():
    """Lessons that have both a solution and checks."""
    return [l for l in registry.available(registry.solutions_dir()) if (ROOT / "checks" / f"lesson{l.number}").is_dir()]


def run_checks(lesson, lessons_root, *extra, timeout=300):
    """`pytest checks/lessonNN --lessons ROOT` in a subprocess; (returncode, output)."""
    cmd = [sys.executable, "-m", "pytest", f"checks/lesson{lesson.number}", "--lessons", str(lessons_root),
           "-p", "no:cacheprovider", "-q", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def summary_table(output):
    """{exercise: status} from the table the checks print at the end."""
    table, inside = {}, False
    for line in output.splitlines():
        if line.startswith("-") and " lesson " in line:
            inside = True
        elif inside and line.startswith("  ") and " exercises pass" not in line:
            exercise, status = line.split(None, 1)
            table[exercise] = status.strip()
    return table


def exercise_tests(lesson):
    """The exercise names, read from the test functions of checks/lessonNN."""
    names = []
    for path in sorted((ROOT / "checks" / f"lesson{lesson.number}").glob("test_*.py")):
        names += [line.split("(")[0][len("def test_"):] for line in path.read_text().splitlines()
                  if line.startswith("def test_")]
    return names
