"""The mutation harness (extras/mutation.py) still works: it finds every exercise's solution code, makes
mutants that compile, and judges them the way the checks do. Its full run is a developer tool, not a test."""

import importlib.util

import pytest

from course import lessons as registry

spec = importlib.util.spec_from_file_location("mutation", registry.ROOT / "extras" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation)

SNIPPET = '''
# %% nbgrader={"grade": false, "grade_id": "norm", "locked": false, "schema_version": 3, "solution": true}
def norm(x):
    ### BEGIN SOLUTION
    m = x.mean(dim=1, keepdim=True)
    return (x - m) / (x.var(dim=1, unbiased=False) + 1e-5) ** 0.5
    ### END SOLUTION


def untouched(y):
    return y + 1
'''


@pytest.mark.parametrize("lesson", registry.all_lessons(), ids=[l.folder for l in registry.all_lessons()])
def test_every_exercise_has_solution_code_and_a_test(lesson):
    text = lesson.script(registry.solutions_dir()).read_text(encoding="utf-8")
    blocks = {exercise for exercise, _, _ in mutation.solution_blocks(text)}
    assert blocks == set(mutation.exercise_tests(lesson.number))


def test_mutants_change_only_solution_code_and_compile():
    found = mutation.mutants(SNIPPET, "00")
    described = {m.description for m in found}
    for expected in ("Sub -> Add", "Div -> Mult", "drop keepdim=", "True -> False", ".mean -> .sum", "1 -> 0",
                     "1e-05 -> 0.0", "remove `m = x.mean(dim=1, keepdim=True)`"):
        assert expected in described, sorted(described)
    for m in found:
        assert m.exercise == "norm" and "return y + 1" in m.text
        compile(m.text, "<mutant>", "exec")
    assert len({m.text for m in found}) == len(found)


def test_a_mutant_is_killed_and_the_solution_is_not():
    lesson = registry.get("01")
    path = lesson.script(registry.solutions_dir())
    text = path.read_text(encoding="utf-8")
    test = mutation.exercise_tests("01")["build_vocab"]
    assert mutation.judge(path, text, test)[0] == "survived"
    dot_not_zero = next(m for m in mutation.mutants(text, "01")
                        if m.exercise == "build_vocab" and m.description == "0 -> 1")
    verdict, detail = mutation.judge(path, dot_not_zero.text, test)
    assert verdict == "failed" and detail.startswith("build_vocab(words) stoi"), (verdict, detail)
