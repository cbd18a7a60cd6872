"""The project's promises: one dependency list, the README's commands, CI calling them."""

import re
import subprocess
import sys
import tomllib

from course import lessons as registry

ROOT = registry.ROOT


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"]
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = [line.strip()[2:] for line in pip_section.splitlines() if line.strip().startswith("- ")]
    assert "-e ." in listed, "the conda environment installs the course package too"
    listed.remove("-e .")
    assert sorted(listed) == sorted(declared), "environment.yml and pyproject.toml must list the same packages"
    assert "torch==2.13.0" in declared


def test_readme_commands_exist_and_ci_calls_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make start" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_lists_every_lesson():
    readme = (ROOT / "README.md").read_text()
    for lesson in registry.all_lessons():
        assert lesson.folder in readme


def test_course_start_shows_data_and_progress():
    proc = subprocess.run([sys.executable, "-m", "course", "start"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "29,910 names" in proc.stdout
    assert re.search(r"01_bigram\s+0/8\s+build_vocab \(not attempted\)", proc.stdout), proc.stdout


def test_reading_list_cites_the_papers():
    text = (ROOT / "extras" / "reading-list.md").read_text()
    for needle in ("Bengio", "Ioffe", "Wu", "van den Oord", "Vaswani", "Radford", "Sennrich"):
        assert needle in text
    assert not list((ROOT / "extras").rglob("*.pdf"))


def test_readme_counts_each_lessons_exercises():
    from tests.helpers import exercise_tests

    rows = {line.split("`")[1]: line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    for lesson in registry.all_lessons():
        cell = rows[lesson.folder].rstrip(" |").rsplit("|", 1)[1].strip()
        if (ROOT / "checks" / f"lesson{lesson.number}").is_dir():
            assert cell == str(len(exercise_tests(lesson))), f"README: {lesson.folder} has {cell}"
        else:
            assert cell == "not written yet", f"README: {lesson.folder} says {cell}"
