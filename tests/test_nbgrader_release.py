"""The nbgrader course folder and release, for every lesson in solutions/: one source, no leak."""

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("nbgrader")

import nbformat  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

from course import lessons as registry  # noqa: E402
from course.classroom import setup  # noqa: E402
from course.classroom.release import check_release, release, solution_lines  # noqa: E402
from tests.nbgrader_learners import py_text, solved, write  # noqa: E402

pytestmark = pytest.mark.slow
LESSONS = setup.gradable()
IDS = [lesson.folder for lesson in LESSONS]


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("course")
    setup.init(path)
    release(path)
    return path


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_source_holds_only_the_notebook_without_pairing(course_dir, lesson):
    folder = course_dir / "source" / lesson.folder
    assert [p.name for p in folder.iterdir()] == [f"{lesson.name}.ipynb"]
    nb = nbformat.read(folder / f"{lesson.name}.ipynb", as_version=4)
    assert "jupytext" not in nb.metadata
    assert "BEGIN SOLUTION" in "".join(c.source for c in nb.cells)  # the source is the solution


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_release_has_no_solution_and_no_hidden_test(course_dir, lesson):
    folder = course_dir / "release" / lesson.folder
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert [p.name for p in files] == [f"{lesson.name}.ipynb"]
    text = files[0].read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    code = "\n".join(c.source for c in nbformat.read(files[0], as_version=4).cells)
    secrets = solution_lines(lesson)
    assert secrets, "the lesson has solution lines to hide"
    assert not [line for line in code.splitlines() if line.strip() in secrets]
    assert check_release(course_dir, lesson) == []


def test_lesson01_hidden_test_is_in_the_gradebook_not_in_the_release(course_dir):
    lesson = registry.get("01")
    assert "seed=20171" not in (course_dir / "release" / lesson.folder / "bigram.ipynb").read_text()
    with setup.gradebook(course_dir) as gb:
        cell = gb.find_source_cell("test_count_bigrams", "bigram", lesson.folder)
        assert "seed=20171" in cell.source


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_release_matches_the_learner_files(course_dir, lesson):
    """What learners work in (lessons/) is what nbgrader released: same cells, same graded-cell metadata."""
    released = nbformat.read(course_dir / "release" / lesson.folder / f"{lesson.name}.ipynb", as_version=4)
    learner = nbformat.read(lesson.notebook(registry.lessons_dir()), as_version=4)
    assert [c.source for c in released.cells] == [c.source for c in learner.cells]
    strip = lambda meta: {k: v for k, v in meta.items() if k not in ("checksum", "cell_type")}  # noqa: E731
    assert ([strip(c.metadata.get("nbgrader", {})) for c in released.cells]
            == [c.metadata.get("nbgrader", {}) for c in learner.cells])


def test_check_release_catches_a_leak(tmp_path):
    lesson = registry.get("01")
    folder = tmp_path / "release" / lesson.folder
    write(folder, "bigram.ipynb", json.dumps(nbformat.v4.new_notebook()))
    assert check_release(tmp_path, lesson) == []
    write(folder, "bigram.py", "x = 1\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(py_text(solved(lesson, {"nll"})))])
    write(folder, "bigram.ipynb", nbformat.writes(nb))
    problems = " | ".join(check_release(tmp_path, lesson))
    assert "not notebooks" in problems and "solution or hidden-test lines" in problems


def test_config_sets_timeout_kernel_stderr_filter_and_missing_cells(course_dir):
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    assert config.Execute.timeout == setup.CELL_TIMEOUT
    assert config.Execute.kernel_name == setup.KERNEL_NAME
    assert config.IgnorePattern.enabled is True
    assert config.OverwriteCells.add_missing_cells is True
    kernel = json.loads((course_dir / "jupyter" / "kernels" / setup.KERNEL_NAME / "kernel.json").read_text())
    assert kernel["argv"][0] == sys.executable and kernel["env"]["PYTHONPATH"] == str(registry.ROOT)


def test_stderr_filter_drops_warnings_only():
    pattern = re.compile(setup.HARMLESS_STDERR)
    assert pattern.search("/x/bigram.py:12: UserWarning: harmless\n  warnings.warn('harmless')\n")
    assert pattern.search("<ipython-input-3>:5: DeprecationWarning: old\n")
    assert pattern.search("Matplotlib is building the font cache; this may take a moment.\n")
    for text in ("Traceback (most recent call last):\n", "ValueError: bad\n", "loss 2.45\n",
                 "neural bigram:  10%|#  | 2/20\n", "my own message to stderr\n"):
        assert not pattern.search(text), text


def test_points_table_in_instructors_guide_is_current():
    guide = (registry.ROOT / "INSTRUCTORS.md").read_text()
    assert setup.points_table() in guide, "rerun `course nbgrader points` and paste it into INSTRUCTORS.md"


def test_cli_points_prints_the_table():
    proc = subprocess.run([sys.executable, "-m", "course", "nbgrader", "points"], capture_output=True, text=True,
                          cwd=registry.ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == setup.points_table()
