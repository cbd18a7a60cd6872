"""Comparisons that explain themselves.

Every check in `checks/` uses these, in pytest and in nbgrader's grading cells
alike. A failed comparison raises CheckFailure with a message that says what
differs: the type, the shape (compared before any value, so broadcasting cannot
hide a slip), the largest difference, the first wrong element, and a hint.
"""

import math

import torch


class CheckFailure(AssertionError):
    """A learner's answer is wrong; the message says how."""


def fail(what, problem, hint=None):
    raise CheckFailure(f"{what}: {problem}" + (f"\n  hint: {hint}" if hint else ""))


def expect(condition, what, problem, hint=None):
    if not condition:
        fail(what, problem, hint)


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def _as_tensor(x, what, hint):
    if isinstance(x, torch.Tensor):
        return x
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return torch.from_numpy(x)
    except ImportError:  # pragma: no cover
        pass
    fail(what, f"expected a torch.Tensor, got {type(x).__name__}", hint)


def assert_close(what, actual, expected, *, rtol=1e-5, atol=1e-6, hint=None, label=None):
    """Compare a learner tensor to a reference one.

    `what` names the value in the message ("bigram_probs(N)"); tolerances are
    applied in float64 as |actual - expected| <= atol + rtol * |expected|.
    `label(index)` may turn an index into words (e.g. "'.' -> 'e'").
    """
    actual = _as_tensor(actual, what, hint)
    expected = torch.as_tensor(expected)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(what, f"shape is {tuple(actual.shape)}, expected {tuple(expected.shape)}", hint)
    if actual.is_floating_point() != expected.is_floating_point() and not expected.is_floating_point():
        fail(what, f"dtype is {actual.dtype}, expected integer values ({expected.dtype})", hint)
    a = actual.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    if a.numel() == 0:
        return
    if torch.isnan(a).any() and not torch.isnan(e).any():
        where = tuple(int(i) for i in torch.nonzero(torch.isnan(a))[0])
        fail(what, f"contains NaN (first at index {list(where)})", hint)
    diff = (a - e).abs()
    bad = diff > atol + rtol * e.abs()
    if not bad.any():
        return
    first = tuple(int(i) for i in torch.nonzero(bad)[0])
    worst = tuple(int(i) for i in torch.unravel_index(torch.argmax(diff), diff.shape))
    name = (lambda i: f"{list(i)}" + (f" ({label(i)})" if label else ""))
    is_int = not expected.is_floating_point()
    show = (lambda t, i: int(t[i]) if is_int else float(t[i]))
    problem = (
        f"{int(bad.sum())} of {bad.numel()} values differ"
        f" (shape {tuple(a.shape)} is right)\n"
        f"  first wrong element at {name(first)}: expected {_fmt(show(e, first))}, got {_fmt(show(a, first))}\n"
        f"  max abs difference {float(diff[worst]):.3g} at {name(worst)}"
        f" (relative {float(diff[worst]) / max(float(e[worst].abs()), 1e-30):.3g});"
        f" tolerance atol={atol:g}, rtol={rtol:g}"
    )
    fail(what, problem, hint)


def assert_scalar(what, actual, expected, *, rtol=1e-5, atol=1e-6, hint=None):
    """Compare a number (float, int or 0-d tensor) with a reference number."""
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            fail(what, f"expected a single number, got a tensor of shape {tuple(actual.shape)}", hint)
        actual = actual.item()
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        fail(what, f"expected a number, got {type(actual).__name__}", hint)
    expected = float(expected)
    if math.isnan(actual) or abs(actual - expected) > atol + rtol * abs(expected):
        fail(what, f"expected {expected:.6g}, got {actual:.6g} (difference {abs(actual - expected):.3g})", hint)


def assert_equal(what, actual, expected, hint=None):
    """Exact equality for plain Python values (lists, dicts, strings, ints)."""
    if actual == expected:
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        wrong = [k for k in expected if k in actual and actual[k] != expected[k]]
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}")
        if extra:
            parts.append(f"unexpected keys {extra[:5]}")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} wrong values, first [{k!r}]: expected {expected[k]!r}, got {actual[k]!r}")
        fail(what, "; ".join(parts), hint)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(actual) != len(expected):
            fail(what, f"length is {len(actual)}, expected {len(expected)}", hint)
        i = next((i for i, (a, e) in enumerate(zip(actual, expected)) if a != e), None)
        if i is None:
            fail(what, f"expected a {type(expected).__name__}, got a {type(actual).__name__}", hint)
        fail(what, f"first difference at position {i}: expected {expected[i]!r}, got {actual[i]!r}", hint)
    fail(what, f"expected {expected!r}, got {actual!r}", hint)


def judged_alone(checks, what, error, uses, **options):
    """Each exercise is judged alone (CONTRIBUTING.md, "The checks"). A check that failed with `error` on
    code which calls the learner's earlier exercises runs their own checks (`checks[name](handle)` for
    each (name, handle) of `uses`, with `options`); the first that fails is named as the cause. Returns when none
    fails: the caller re-raises its own failure.

    A missing exercise or a timeout is never blamed on another; an earlier exercise that is blank or
    missing is passed over for the next; one whose own check raises leaves the caller's own failure
    standing (a timeout there stands as the verdict); and the hint names the pytest command that shows
    the failing check's whole message."""
    from .grading.handles import LearnerError, Missing

    def blank(e):  # not attempted, or not there at all
        return isinstance(e, LearnerError) and (e.is_a("NotImplementedError") or isinstance(e, Missing))

    def timeout(e):
        return isinstance(e, LearnerError) and e.type_name == "CheckTimeout"

    if blank(error) or timeout(error):
        return  # the verdict says which blank it needs, or that time ran out
    for name, handle in uses:
        if handle is None:
            continue
        try:
            checks[name](handle, **options)
        except (CheckFailure, LearnerError) as e:
            if timeout(e):
                raise
            if blank(e):
                continue  # absent or blank, so not what made this check fail
            if isinstance(e, LearnerError):
                return  # it raised: the caller's own failure stands (an error shows the learner's frames)
            first = (str(e).splitlines() or [type(e).__name__])[0]
            lesson = checks["__name__"].split(".")[1]  # checks.lessonNN.exercises
            fail(what, f"this uses your `{name}`, which fails its own check: fix that first",
                 hint=f"`pytest checks/{lesson} --exercise {name}` says: {first[:200]}")
