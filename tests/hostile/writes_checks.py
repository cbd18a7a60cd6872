# Appends a replacement nll to the checks, so that the *next* learner's wrong nll passes.
# expect: nll=wrong
from pathlib import Path


def _append():
    import checks

    path = Path(checks.__file__).parent / "lesson01" / "exercises.py"
    try:
        with open(path, "a") as fh:
            fh.write("\n\ndef nll(*args, **kwargs):\n    return None\n")
    except OSError:
        pass
    return None


def nll(P, words, stoi, _=_append()):
    return 1.0
