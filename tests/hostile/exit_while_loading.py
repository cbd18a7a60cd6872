# Exits with status 0 while the definitions load: nothing can be graded, nothing passes.
# expect: *=cannot load
import os


def _bye():
    os._exit(0)


def build_vocab(words, _=_bye()):
    raise NotImplementedError()
