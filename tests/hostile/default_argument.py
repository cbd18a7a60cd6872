# A wrong nll; a default argument (run when the definitions load) patches the checks and the
# assertions so that any answer passes.
# expect: nll=wrong


def _patch():
    import checks.lesson01.exercises as ex
    import course.assertions as a

    a.fail = lambda *args, **kwargs: None
    a.assert_scalar = a.assert_close = a.expect = a.assert_equal = lambda *args, **kwargs: None
    ex.nll = lambda *args, **kwargs: None
    return 0


def nll(P, words, stoi, _unused=_patch()):
    return 0.0
