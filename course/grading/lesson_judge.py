"""Judge a whole lesson file: every graded exercise, with the seeds its grading cell uses.

The nbgrader route's grade of record. The calls come from the grading cells
of the reference lesson (`check.nll(nll)`, and the hidden
`check.nll(nll, seed=20171)`), read as source text, never from the learner's
notebook. Each call runs in this process with Remote handles to one probe of
the learner's file.
"""

import ast
import hashlib
import importlib
import os
import re

import torch

from .integrity import TamperError
from .judge import RemoteLesson
from .verdict import describe, learner_text

HIDDEN = re.compile(r"^\s*### (BEGIN|END) HIDDEN TESTS\s*$", re.M)


class CheckCall:
    """One `check.<function>(<learner names>, key=literal, ...)` line of a grading cell."""

    def __init__(self, function, names, options):
        self.function, self.names, self.options = function, names, options

    def __repr__(self):
        return f"check.{self.function}({', '.join(self.names)}, {self.options})"


def parse_grading_cell(source):
    """The CheckCalls of a grading cell's source (hidden tests included); ValueError on anything else."""
    calls = []
    for node in ast.parse(HIDDEN.sub("", source)).body:
        call = node.value if isinstance(node, ast.Expr) else None
        ok = (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
              and isinstance(call.func.value, ast.Name) and call.func.value.id == "check"
              and all(isinstance(a, ast.Name) for a in call.args))
        if not ok:
            raise ValueError(f"a grading cell may only call check.<exercise>(names, key=literal): "
                             f"{ast.unparse(node)!r}")
        calls.append(CheckCall(call.func.attr, [a.id for a in call.args],
                               {k.arg: ast.literal_eval(k.value) for k in call.keywords}))
    return calls


def grading_calls(lesson, solution_nb):
    """{exercise: [CheckCall, ...]} from the reference lesson's grading cells."""
    out = {}
    for cell in solution_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            out[meta["grade_id"].removeprefix("test_")] = parse_grading_cell(cell.source)
    return out


def judge_file(lesson, path, calls, seconds=30.0, memory_gb=None, lenient=False, sha256=None, budget=None,
               printed=None):
    """{exercise: (status, message)} for the learner's file at `path` (.py or .ipynb). `lenient`: a
    notebook cell with a syntax error costs only what it defines (as when nbgrader runs it). `sha256`:
    the file must be exactly that (the snapshot taken at collect time), else TamperError; the bytes
    checked are the bytes graded. `budget`: seconds for all the file's checks together (the exercises
    after it are `timeout`). `printed`: a dict that receives, per exercise, what the learner's code
    printed (bounded)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise TamperError(f"grading stopped: {path} is not the submission collected (its sha256 changed); "
                          f"collect again")
    torch.set_num_threads(1)  # before the probe forks: tiny tensors, and no thread pool to inherit
    checks = importlib.import_module(f"checks.lesson{lesson.number}.exercises")
    kwargs = {} if memory_gb is None else {"memory_gb": memory_gb}
    learner = RemoteLesson(path, text=data.decode("utf-8", errors="replace"),
                           module_name=f"learner_{lesson.folder}", lenient=lenient, budget=budget, **kwargs)
    verdicts = {}
    try:
        for exercise, exercise_calls in calls.items():
            verdict = ("pass", "")
            for c in exercise_calls:
                learner.set_deadline(seconds)
                try:
                    getattr(checks, c.function)(*[getattr(learner, n) for n in c.names], **c.options)
                except Exception as e:  # noqa: BLE001 - every failure becomes a verdict
                    verdict = describe(exercise, e, seconds) or (
                        "error", f"{exercise}: the check itself failed: {type(e).__name__}: {learner_text(e)}")
                    break
            verdicts[exercise] = verdict
            output = learner.take_output()
            if printed is not None and output:
                printed[exercise] = output
    finally:
        learner.close()
    return verdicts
