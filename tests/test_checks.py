"""The checks grade right: solutions pass everything, blank lessons are 'not attempted'."""

import re

import pytest

from course import lessons as registry
from tests.helpers import checked_lessons, exercise_tests, run_checks, summary_table

LESSONS = checked_lessons()


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_solutions_pass_every_check(lesson):
    code, out = run_checks(lesson, registry.solutions_dir())
    table = summary_table(out)
    assert code == 0, out
    assert table and set(table.values()) == {"pass"}, out
    assert sorted(table) == sorted(exercise_tests(lesson)), "every exercise test must report"


@pytest.mark.parametrize("lesson", LESSONS, ids=[l.folder for l in LESSONS])
def test_blank_lesson_is_not_attempted_everywhere(lesson):
    code, out = run_checks(lesson, registry.ROOT / "lessons")
    table = summary_table(out)
    assert code == 1, out
    assert sorted(table) == sorted(exercise_tests(lesson)), out
    assert set(table.values()) == {"not attempted"}, out
    assert "Traceback" not in out and "Error" not in out.replace("NotImplementedError", ""), out
    where = f"lessons/{lesson.folder}/{lesson.name}.py:"
    for exercise in table:
        # Its own blank, or the blank of an earlier exercise it builds on (named, with its line).
        assert (f"{exercise}: not attempted yet ({where}" in out
                or re.search(rf"{exercise}: not attempted yet: it needs [\w.]+, still blank at {where}", out)), out


def test_every_solution_has_checks_and_every_check_folder_a_lesson():
    with_solution = {l.number for l in registry.available(registry.solutions_dir())}
    with_checks = {p.name.removeprefix("lesson") for p in (registry.ROOT / "checks").glob("lesson*") if p.is_dir()}
    assert with_solution == with_checks
