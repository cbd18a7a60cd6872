"""lessons/ is generated from solutions/: fresh, deterministic, leak-free, and never clobbers work."""

import json
import re

import jupytext
import pytest

from course import build, lessons as registry
from course.cells import ipynb_code_cells, py_code_cells
from course.source import MANIFEST, code_fingerprint

ROOT = registry.ROOT
LESSONS = registry.available(registry.solutions_dir())
IDS = [l.folder for l in LESSONS]


@pytest.fixture(scope="module")
def rendered():
    return build.render_all()


def test_committed_lessons_are_fresh():
    assert build.build(check=True, log=lambda *a: None) == [], "lessons/ is stale: run `course build`"


def test_build_is_deterministic(rendered):
    assert build.render_all() == rendered


def test_nothing_else_lives_in_lessons(rendered):
    on_disk = {str(p.relative_to(ROOT / "lessons")) for p in (ROOT / "lessons").rglob("*") if p.is_file()}
    assert on_disk == set(rendered)


def _solution_only_lines(text):
    """Substantial lines inside solution or hidden-test regions that occur nowhere else in the file."""
    inside, secret, public = False, set(), set()
    for line in text.splitlines():
        if re.search(r"### BEGIN (SOLUTION|HIDDEN TESTS)", line):
            inside = True
        elif re.search(r"### END (SOLUTION|HIDDEN TESTS)", line):
            inside = False
        elif len(line.strip()) >= 12:
            (secret if inside else public).add(line.strip())
    return secret - public


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_no_solution_reaches_lessons(lesson, rendered):
    secret = _solution_only_lines(lesson.script(registry.solutions_dir()).read_text())
    assert secret, "a lesson without solution regions cannot be checked for leaks"
    for rel, data in rendered.items():
        if not rel.startswith(lesson.folder):
            continue
        text = data.decode()
        for marker in build.MARKERS:
            assert marker not in text, f"{rel} contains {marker}"
        if rel.endswith(".ipynb"):
            text = "\n".join(src for _, src in ipynb_code_cells(text))
        leaked = sorted(secret & {line.strip() for line in text.splitlines()})
        assert not leaked, f"{rel} contains solution lines: {leaked[:3]}"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_blanks_keep_signature_and_docstring(lesson, rendered):
    text = rendered[f"{lesson.folder}/{lesson.name}.py"].decode()
    nb = jupytext.reads(text, fmt="py:percent")
    solution_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solution_cells
    for cell in solution_cells:
        assert "raise NotImplementedError()" in cell.source
        if cell.source.lstrip().startswith("def "):
            assert '"""' in cell.source, f"{cell.metadata['nbgrader']['grade_id']}: docstring lost"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_paired_notebook(lesson, rendered):
    py = rendered[f"{lesson.folder}/{lesson.name}.py"].decode()
    nb_text = rendered[f"{lesson.folder}/{lesson.name}.ipynb"].decode()
    nb = json.loads(nb_text)
    assert nb["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])
    # Both files carry the same code, by our parser and by jupytext's.
    assert code_fingerprint("x.py", py) == code_fingerprint("x.ipynb", nb_text)
    ours = [src.strip() for _, src in py_code_cells(py) if src.strip()]
    theirs = [c.source.strip() for c in jupytext.reads(py, fmt="py:percent").cells if c.cell_type == "code"]
    assert ours == [t for t in theirs if t]


def test_manifest_records_what_was_written(rendered):
    manifest = json.loads(rendered[MANIFEST])
    assert set(manifest) == set(rendered) - {MANIFEST}


def test_build_never_overwrites_learner_work(tmp_path):
    out = tmp_path / "lessons"
    assert build.build(lessons_root=out, log=lambda *a: None) == []
    lesson = LESSONS[0]
    script = lesson.script(out)
    mine = script.read_text() + "\n# my notes\n"
    script.write_text(mine)
    refused = build.build(lessons_root=out, log=lambda *a: None)
    assert refused == [f"{lesson.folder}/{script.name}"]
    assert script.read_text() == mine
    assert build.build(lessons_root=out, force=True, log=lambda *a: None) == []
    backups = list(script.parent.glob(f"{script.name}.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == mine
    assert build.build(lessons_root=out, check=True, log=lambda *a: None) == []


def test_check_mode_reports_stale_files(tmp_path):
    out = tmp_path / "lessons"
    build.build(lessons_root=out, log=lambda *a: None)
    (out / MANIFEST).write_text("{}\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert build.build(lessons_root=out, check=True, log=lambda *a: None) == [MANIFEST]
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}, "check mode must not write"


def test_a_conflicted_manifest_is_written_anew(tmp_path):
    out = tmp_path / "lessons"
    build.build(lessons_root=out, log=lambda *a: None)
    (out / MANIFEST).write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n")
    assert build.build(lessons_root=out, log=lambda *a: None) == []
    assert build.build(lessons_root=out, check=True, log=lambda *a: None) == []
