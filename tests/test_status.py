"""`course status` and what a check run loads: the table is the checks' verdicts, and a lesson's
run loads only what its checks use (extras/benchmarks/checks-speed.md says what each costs)."""

import subprocess
import sys

import pytest

from course import cli
from course import lessons as registry
from tests.helpers import exercise_tests

ROOT = registry.ROOT


def status_rows(capsys):
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["lesson", "done", "next"]
    return {line.split()[0]: line.split(None, 1)[1] for line in out[1:]}


@pytest.mark.slow
def test_status_of_the_solutions_is_every_exercise_passing(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_LESSONS", str(registry.solutions_dir()))
    assert cli.main(["status"]) == 0
    rows = status_rows(capsys)
    for lesson in registry.all_lessons():
        n = len(exercise_tests(lesson))
        assert rows[lesson.folder].split() == [f"{n}/{n}", "all", "exercises", "pass"], rows[lesson.folder]


@pytest.mark.slow
def test_status_of_the_blank_lessons_names_each_first_exercise_not_attempted(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_LESSONS", str(ROOT / "lessons"))
    assert cli.main(["status"]) == 0
    rows = status_rows(capsys)
    for lesson in registry.all_lessons():
        names = exercise_tests(lesson)
        assert rows[lesson.folder].split() == [f"0/{len(names)}", names[0], "(not", "attempted)"], rows[lesson.folder]


# A pytest plugin that reports, when the run ends, which of these modules the judge had imported.
REPORTER = '''
import sys

def pytest_unconfigure(config):
    with open(OUT, "w") as fh:
        fh.write(" ".join(m for m in ("hypothesis", "matplotlib", "pyarrow", "sympy") if m in sys.modules))
'''


def judge_imports(tmp_path, lesson, lessons_root, *extra):
    plugin = tmp_path / "report_imports.py"
    out = tmp_path / "imports.txt"
    plugin.write_text(f"OUT = {str(out)!r}\n" + REPORTER)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path), "COURSE_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "report_imports",
                    "--lessons", str(lessons_root), f"checks/lesson{lesson}", *extra],
                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return set(out.read_text().split())


def test_a_lesson_without_property_checks_never_imports_hypothesis(tmp_path):
    # Nor matplotlib: the lesson file imports it, but the probe defers it, and the judge never loads it.
    assert judge_imports(tmp_path, "01", registry.solutions_dir()) == set()


def test_a_lesson_with_property_checks_imports_hypothesis_and_gradients_do_not_import_sympy(tmp_path):
    # out.backward(grad_out) imports sympy through torch.fx; the checks take sum(out * grad_out).backward().
    assert judge_imports(tmp_path, "06", registry.solutions_dir(), "--exercise", "attention_head") == {"hypothesis"}
