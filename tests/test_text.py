"""What the lessons' prose quotes agrees with the data they load and the runs they cite."""

import math
import re
import subprocess
import sys

import pytest

from course import data
from course import lessons as registry

ROOT = registry.ROOT
SOLUTIONS = registry.solutions_dir()


def prose(lesson):
    return lesson.script(SOLUTIONS).read_text()


def test_every_quoted_logarithm_is_right():
    # "ln 27 \approx 3.2958", "\ln 69 \approx 4.23": each quoted value is ln N to the digits shown.
    for lesson in registry.available(SOLUTIONS):
        for n, value in re.findall(r"\\?ln (\d+) \\approx (\d+\.\d+)", prose(lesson)):
            digits = len(value.split(".")[1])
            assert f"{math.log(int(n)):.{digits}f}" == value, f"{lesson.folder}: ln {n} is not {value}"


def test_names_vocabulary_is_27():
    words = data.load_names("embedded")
    assert len(set("".join(words))) + 1 == 27  # a-z and '.'
    for number in ("01", "03"):
        assert "ln 27" in prose(registry.get(number))


def test_gpt_lesson_quotes_the_vocabulary_of_the_embedded_plays():
    vocab = len(set(data.load_shakespeare("embedded")))
    text = prose(registry.get("06"))
    assert f"\\ln {vocab} \\approx {math.log(vocab):.2f}$ on the embedded plays, which use {vocab}" in text


def test_figures_go_beside_the_lesson_from_the_shell(tmp_path):
    lesson = tmp_path / "01_x"
    lesson.mkdir()
    (lesson / "x.py").write_text("from course.runtime import out_dir\nprint(out_dir())\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(lesson / "x.py")], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == str(lesson / "out"), proc.stderr


@pytest.mark.parametrize("lesson", registry.available(SOLUTIONS), ids=lambda l: l.folder)
def test_readme_gives_each_lessons_full_run_time(lesson):
    readme = (ROOT / "README.md").read_text()
    fast = readme[readme.index("**Fast mode.**"):]
    row = next((line for line in fast.splitlines() if line.startswith(f"- `{lesson.folder}`: ")), "")
    assert re.search(r"\d+ (s|min)", row), f"README, fast mode: no full-run time for {lesson.folder}"
