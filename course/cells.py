"""A lesson file's cells, in either of its two formats (py:percent script, notebook JSON).

Cells are numbered as Jupyter shows them (from 1, markdown included), and a
cell is named as a learner would name it: its exercise (nbgrader grade_id),
else what it defines. Parsing only: nothing here runs or judges code.
"""

import json
import re
from pathlib import Path

CELL_MARKER = re.compile(r"^# %%(.*)$")
GRADE_ID = re.compile(r'"grade_id":\s*"([^"]*)"')


def py_cells(text):
    """All cells of a py:percent script as (kind, first line number, header, source); blank text
    before the first `# %%` is no cell."""
    cells, start, kind, header, lines = [], 1, "code", "", []

    def close():
        if cells or kind != "code" or any(line.strip() for line in lines):
            cells.append((kind, start, header, "\n".join(lines)))

    for number, line in enumerate(text.splitlines(), start=1):
        marker = CELL_MARKER.match(line)
        if marker:
            close()
            header = marker.group(1)
            kind = "markdown" if "[markdown]" in header or "[md]" in header else "code"
            start, lines = number + 1, []
        else:
            lines.append(line)
    close()
    return cells


def py_code_cells(text):
    """Code cells of a py:percent script as (first line number, source)."""
    return [(start, src) for kind, start, _, src in py_cells(text) if kind == "code"]


def ipynb_code_cells(text):
    """Code cells of a notebook's JSON as (cell number as Jupyter counts them: from 1, markdown
    cells included, source)."""
    nb = json.loads(text)
    return [
        (i, c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
        for i, c in enumerate(nb.get("cells", []), start=1)
        if c.get("cell_type") == "code"
    ]


def strip_magics(src):
    """A notebook cell's source without its IPython magics and shell escapes (`%...`, `!...`): not Python."""
    return "\n".join("" if re.match(r"\s*[%!]", line) else line for line in src.splitlines())


def clean_source(src):
    # What both formats agree on: no surrounding blank lines, no trailing blanks.
    return "\n".join(line.rstrip() for line in src.strip("\n").splitlines())


def _cell_name(grade_id, src, number):
    """What a learner calls a cell: its exercise (nbgrader grade_id), else what it defines."""
    if grade_id:
        return grade_id
    names = re.findall(r"^(?:def|class)\s+(\w+)", src, re.M)
    return ", ".join(names) if names else f"cell {number}"


def named_code(path, text=None):
    """{name: code} of a lesson file's non-empty code cells (see `_cell_name`), for either format."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    found = {}
    if path.suffix == ".ipynb":
        cells = json.loads(text).get("cells", [])
        items = [(((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id"),
                  c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
                 for c in cells if c.get("cell_type") == "code"]
    else:
        items = [((GRADE_ID.search(header) or [None, None])[1], src)
                 for kind, _, header, src in py_cells(text) if kind == "code"]
    number = 0
    for grade_id, src in items:
        src = clean_source(src)
        if src:
            number += 1
            name = _cell_name(grade_id, src, number)
            while name in found:
                name += "'"
            found[name] = src
    return found


def differing(a, b, text_a=None, text_b=None):
    """The names (exercises first) of the code cells in which two lesson files differ."""
    ca, cb = named_code(a, text_a), named_code(b, text_b)
    return [n for n in dict.fromkeys([*ca, *cb]) if ca.get(n) != cb.get(n)]
