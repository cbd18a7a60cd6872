"""`course nbgrader report`: a synthetic class, one learner per classic mistake in tests/wrong/, each
found under the mistake its check named, in the CSV and on the HTML page.

The verdicts here come from the checks themselves (the same `describe` the judge uses), one learner
per wrong variant, every other exercise passed; the end-to-end route through `course nbgrader grade`
is tested in tests/test_nbgrader_grading.py.
"""

import csv
import html
import importlib
import json
import shutil
import subprocess

import pytest

from course import lessons as registry
from course.classroom import mistakes
from course.classroom.setup import exercises
from course.grading.verdict import describe

LESSONS = ["01", "02", "03", "04", "07"]  # 05 and 06 call their checks with extra classes (own harness)


def synthetic_class(number):
    """{learner: {"score", "max_score", "verdicts"}}: one learner per wrong variant of the lesson."""
    check = importlib.import_module(f"checks.lesson{number}.exercises")
    wrong = importlib.import_module(f"tests.wrong.lesson{number}")
    depends = getattr(wrong, "DEPENDS", {})
    graded = [(e.name, e.points) for e in exercises(registry.get(number))]
    total = sum(p for _, p in graded)
    saved = {}
    for exercise, variants in wrong.WRONG.items():
        for variant in variants:
            try:
                getattr(check, exercise)(variant, *depends.get(exercise, ()))
                verdict = ("pass", "")
            except Exception as e:  # noqa: BLE001 - each becomes a verdict, as in the judge
                verdict = describe(exercise, e)
            verdicts = {name: ("pass", "") for name, _ in graded}
            verdicts[exercise] = verdict
            lost = dict(graded)[exercise]
            saved[variant.__name__] = {"score": total - lost, "max_score": total, "verdicts": verdicts}
    return saved, graded


@pytest.mark.parametrize("number", LESSONS)
def test_every_mistake_is_grouped_under_its_own_hint(number, tmp_path):
    saved, graded = synthetic_class(number)
    table = mistakes.summarise(saved, graded)
    for learner, entry in saved.items():
        (exercise, (status, message)), = [(ex, v) for ex, v in entry["verdicts"].items() if v[0] != "pass"]
        key = mistakes.mistake_of(status, message)
        groups = [k for k, who in table[exercise]["mistakes"].items() if learner in [w for w, _ in who]]
        assert groups == [key], (learner, groups, key)
        assert status in ("wrong", "error") and key not in ("wrong", "error"), (learner, key)
        hint = next((line.strip() for line in message.splitlines() if line.strip().startswith("hint:")), None)
        if hint:  # the learner's own numbers are gone, the words of the hint are there
            words = [w for w in hint.removeprefix("hint:").split() if w.isalpha() and len(w) > 3]
            assert all(w in key for w in words), (key, hint)
    for name, row in table.items():
        failing = sum(len(who) for who in row["mistakes"].values())
        assert row["passed"] + failing == row["graded"] == len(saved)


def test_learners_own_values_do_not_split_a_mistake():
    a = "bigram_probs(N, k): 35 of 36 values differ\n  hint: rows must sum to 1, yours sum to [43.0, 47.0, 43.0]"
    b = "bigram_probs(N, k): 34 of 36 values differ\n  hint: rows must sum to 1, yours sum to [0.668, 1e-05, 2]"
    assert mistakes.mistake_of("wrong", a) == mistakes.mistake_of("wrong", b) == \
        "wrong: rows must sum to 1, yours sum to [...]"
    assert mistakes.mistake_of("wrong", "nll: expected 3.4, got 5\n  hint: use the natural log, not log2") != \
        mistakes.mistake_of("wrong", "nll: expected 3.4, got 5\n  hint: divide by the number of bigrams")
    err = "neural_nll: your code raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (40x24 and 27x27)"
    assert mistakes.mistake_of("error", err) == \
        "error: your code raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (#x# and #x#)"
    assert mistakes.mistake_of("wrong", "x: got 2\n  hint: divide by N.sum(dim=1, keepdim=True), not 0.5") == \
        "wrong: divide by N.sum(dim=1, keepdim=True), not #"
    assert mistakes.mistake_of("not attempted", "nll: not attempted yet (bigram.py:10)") == "not attempted"
    assert mistakes.mistake_of("pass", "") is None


def test_report_page_and_csv(tmp_path):
    """The page lists every learner under its mistake, with charts, and runs no script; the CSV agrees."""
    lesson = registry.get("01")
    saved, graded = synthetic_class("01")
    saved["blank"] = {"score": 0, "max_score": 13, "verdicts": {n: ("not attempted", f"{n}: not attempted yet")
                                                                 for n, _ in graded}}
    (tmp_path / "reports").mkdir()
    mistakes.verdicts_path(tmp_path, lesson).write_text(json.dumps(saved))
    page = mistakes.write(tmp_path, lesson, graded)
    text = page.read_text()
    assert text.count("<img") == 2 and text.count("data:image/png;base64,") == 2
    assert "script-src" not in text and "default-src 'none'" in text and "<script" not in text
    table = mistakes.summarise(saved, graded)
    for name, row in table.items():
        worth = dict(graded)[name]
        assert f"{name} ({worth:g} point{'' if worth == 1 else 's'}): {row['passed']} of {len(saved)} passed" in text
        for key, who in row["mistakes"].items():
            assert html.escape(key) in text
            assert all(f"<b>{html.escape(w)}</b>" in text for w, _ in who)
    with open(page.with_suffix(".csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    learners = {(r["exercise"], w) for r in rows for w in r["learners"].split()}
    assert ("nll", "blank") in learners and ("nll", "nll_sign") in learners
    assert len(learners) == sum(len(who) for row in table.values() for who in row["mistakes"].values())
    _screenshot(page, tmp_path)


def _screenshot(page, tmp_path):
    """Headless Chromium renders the page (a test artifact, looked at by the author), where installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return
    shot = tmp_path / "mistakes.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
                    "--window-size=1200,2400", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, "chromium did not render the report"
    print(f"screenshot of the report: {shot}")


def test_report_without_grading_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="grade it first"):
        mistakes.write(tmp_path, registry.get("01"), [])
