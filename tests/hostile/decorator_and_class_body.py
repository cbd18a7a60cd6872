# Blank exercises, and code in a decorator, a class body, a metaclass, __init_subclass__ and an
# annotation that patches the checks in every way it can think of.
# expect: build_vocab=not attempted, count_bigrams=not attempted


def _patch_everything(*args):
    import checks.lesson01.exercises as ex
    import course.assertions as a
    import torch

    for name in dir(ex):
        if not name.startswith("_") and callable(getattr(ex, name)):
            setattr(ex, name, lambda *args, **kwargs: None)
    a.CheckFailure = type("Nothing", (Exception,), {})
    torch.allclose = lambda *args, **kwargs: True
    torch.equal = lambda *args, **kwargs: True
    return args[0] if args and callable(args[0]) else None


@_patch_everything
def build_vocab(words):
    raise NotImplementedError()


class _Meta(type):
    def __new__(mcs, name, bases, ns):
        _patch_everything()
        return super().__new__(mcs, name, bases, ns)


class _Sneaky(metaclass=_Meta):
    _patch_everything()

    def __init_subclass__(cls, **kwargs):
        _patch_everything()


class _Sub(_Sneaky):
    pass


def count_bigrams(words, stoi) -> _patch_everything():
    raise NotImplementedError()
