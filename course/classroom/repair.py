"""Repair a learner's notebook to the lesson's graded structure, and say what will cost points.

Learners delete test cells, duplicate them, edit their metadata or remove the
checks' import. `repair` puts every graded cell back as released, so each
exercise is graded by its original test, and lists the syntax errors and
blank exercises up front.
"""

import ast
import copy
import re
from collections import Counter

from ..build import KERNELSPEC, clear
from ..cells import strip_magics
from .setup import exercises

CHECK_IMPORT = re.compile(r"^from checks\.lesson\d+ import exercises as check\s*$", re.M)  # every test cell needs it


def _defines(cell, name):
    return cell.cell_type == "code" and re.search(rf"^\s*def {re.escape(name)}\(", cell.source, re.M)


def repair(nb, lesson, solution_nb, released=None):
    """Check a learner notebook against the lesson's graded cells and make it gradable.

    Returns (notebook, problems, notes). Problems cost points (syntax errors,
    blank exercises); notes are repairs made so that every exercise is graded
    by its original test. `released`: clear(solution_nb), when the caller has it (collect: once per batch).
    """
    import nbformat

    released = released if released is not None else clear(solution_nb)
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in released.cells
            if "nbgrader" in c.metadata}
    released_source = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released.cells if "nbgrader" in c.metadata}
    graded = exercises(lesson, solution_nb)
    problems, notes = [], []
    nb = copy.deepcopy(nb)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}

    # Duplicated or unknown graded cells: keep the first copy of each, plain cells for the rest.
    seen = Counter()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            cell.metadata.pop("nbgrader", None)
            continue
        seen[grade_id] += 1
        if grade_id not in meta:
            notes.append(f"cell {grade_id!r} is not a graded cell of this lesson; graded as a plain cell")
            del cell.metadata["nbgrader"]
        elif seen[grade_id] > 1:
            notes.append(f"cell {grade_id!r} appears {seen[grade_id]} times; the copies after the first run "
                         f"as plain cells")
            del cell.metadata["nbgrader"]
        else:
            if cell.metadata["nbgrader"] != meta[grade_id]:
                notes.append(f"the nbgrader metadata of {grade_id!r} was changed; restored")
            cell.metadata["nbgrader"] = copy.deepcopy(meta[grade_id])
            if meta[grade_id].get("locked") and cell.source.strip() != released_source[grade_id].strip():
                notes.append(f"{grade_id} was edited; nbgrader grades the original test")

    # Missing test cells go back after their exercise (or the cell defining it, or at the end).
    present = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    for ex in graded:
        if ex.name not in present:
            where = next((c for c in nb.cells if _defines(c, ex.name)), None)
            notes.append(f"the header of exercise {ex.name}'s cell is missing"
                         + ("; its code still runs" if where is not None else "; no `def " + ex.name
                            + "` found: not attempted"))
        if ex.test in present:
            continue
        anchor = present.get(ex.name) or next((c for c in nb.cells if _defines(c, ex.name)), None)
        cell = nbformat.v4.new_code_cell(released_source[ex.test], metadata={"nbgrader": copy.deepcopy(meta[ex.test])})
        index = nb.cells.index(anchor) + 1 if anchor is not None else len(nb.cells)
        nb.cells.insert(index, cell)
        present[ex.test] = cell
        notes.append(f"{ex.test} was missing (deleted, or its header was); the original test was put back")

    # Every test cell calls `check`: the import must be there.
    imports = CHECK_IMPORT.findall("\n".join(c.source for c in solution_nb.cells if c.cell_type == "code"))
    if imports and not any(CHECK_IMPORT.search(c.source) for c in nb.cells if c.cell_type == "code"):
        first_test = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
        nb.cells.insert(first_test, nbformat.v4.new_code_cell(imports[0].strip()))
        notes.append(f"`{imports[0].strip()}` was missing; added before the first test")

    # What will cost points, said up front.
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            ast.parse(strip_magics(cell.source))
        except SyntaxError as e:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            problems.append(f"syntax error in cell {i}{f' ({grade_id})' if grade_id else ''}, line {e.lineno}: "
                            f"{e.msg}")
        if re.search(r"\bos\._exit\s*\(", cell.source):
            notes.append(f"cell {i} calls os._exit, which kills the kernel")
    blank = [ex.name for ex in graded if ex.name in present and "NotImplementedError" in present[ex.name].source
             and present[ex.name].source.strip() == released_source[ex.name].strip()]
    if len(blank) == len(graded):
        notes.append("no exercise attempted")
    elif blank:
        notes.append(f"not attempted: {', '.join(blank)}")

    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.metadata.pop("jupytext", None)
    nbformat.validate(nb)
    return nb, problems, notes
