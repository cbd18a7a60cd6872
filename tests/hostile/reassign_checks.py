# A wrong nll and a blank sgd_step; one top-level cell (run by nbgrader's notebook run, where the
# grading cells call `check.<name>`) makes every check pass, return -1 or display a string.
# expect: nll=wrong, sgd_step=not attempted
import checks.lesson01.exercises as _checks

_checks.nll = lambda *args, **kwargs: "2"
_checks.sgd_step = lambda *args, **kwargs: None
_checks.build_vocab = lambda *args, **kwargs: -1


def nll(P, words, stoi):
    return 0.0


def sgd_step(W, xs, ys, lr, reg=0.01):
    raise NotImplementedError()
