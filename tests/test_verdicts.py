"""One status and one message per failed exercise, naming the learner's real mistake."""

from course import lessons as registry
from course.cli import run_checks, parse_summary
from tests.nbgrader_learners import edit, py_text, solved, write

LESSON = registry.get("01")


def _grade(tmp_path, nb, *extra):
    write(tmp_path / LESSON.folder, f"{LESSON.name}.py", py_text(nb))
    code, out = run_checks([LESSON.number], tmp_path, *extra)
    return code, out, parse_summary(out)["01"]


def test_not_implemented_inside_torch_is_an_error_not_a_blank(tmp_path):
    # Swapped arguments: torch raises NotImplementedError ("... not implemented for 'Long'").
    nb = edit(solved(LESSON, "all"), "neural_nll", "    logits = x @ W  # (n, V), log-counts\n",
               "    logits = x @ W\n    F.cross_entropy(ys, logits)\n")
    code, out, table = _grade(tmp_path, nb, "-k", "neural_nll")
    assert table == {"neural_nll": "error"}, out
    assert "not implemented for" in out and "neural_nll: your code raised NotImplementedError" in out, out


def test_a_return_the_check_cannot_use_is_the_learners_mistake_in_one_line(tmp_path):
    nb = edit(solved(LESSON, "all"), "bigram_dataset", "    return torch.tensor(xs", "    pass  # torch.tensor(xs")
    code, out, table = _grade(tmp_path, nb, "-k", "bigram_dataset")
    assert table == {"bigram_dataset": "wrong"}, out
    assert "bigram_dataset: what your code returned cannot be used" in out and "Traceback" not in out, out


def test_learner_text_cannot_forge_the_table(tmp_path):
    fake = "---------- lesson 01 bigram: x ----------\n  nll  pass\n  8 of 8 exercises pass"
    nb = edit(solved(LESSON, "all"), "nll", "    xs, ys = [], []\n", f"    print({fake!r})\n    raise ValueError({fake!r})\n")
    code, out, table = _grade(tmp_path, nb, "-k", "nll and not neural")
    assert code == 1 and table == {"nll": "error"}, out
    assert "\n  nll  pass" not in out and "\n---------- lesson 01 bigram: x" not in out, out
    assert "  | ---------- lesson 01 bigram: x" in out, out  # what it printed is shown, as its own lines


VOCAB = "    chars = sorted(set(\"\".join(words)))\n"
PRINTS = {"build_vocab": (VOCAB, "    print('vocabulary of', len(words), 'words')\n" + VOCAB),
          "nll": ("    xs, ys = [], []\n", "    print('nll \\x1b[31mcalled\\x1b[0m')\n    return 0.0\n")}


def _printing(tmp_path):
    nb = solved(LESSON, "all")
    for name, (old, new) in PRINTS.items():
        nb = edit(nb, name, old, new)
    return nb


def test_a_print_shows_under_your_code_printed(tmp_path):
    """pytest's default capture: a print no longer fails the exercise, and a failed check shows it."""
    code, out, table = _grade(tmp_path, _printing(tmp_path), "-k", "build_vocab or nll and not neural")
    assert table == {"build_vocab": "pass", "nll": "wrong"}, out
    section = out.split("your code printed")[1]
    assert "  | nll called" in section and "\x1b" not in out, out


def test_a_print_shows_with_dash_s_too(tmp_path):
    """-s: what learner code printed is written as it comes, for a pass as for a failure."""
    code, out, table = _grade(tmp_path, _printing(tmp_path), "-s", "-k", "build_vocab or nll and not neural")
    assert table == {"build_vocab": "pass", "nll": "wrong"}, out
    assert "build_vocab: your code printed" in out and "  | vocabulary of 4 words" in out, out
    assert "nll: your code printed" in out and "  | nll called" in out and "\x1b" not in out, out
