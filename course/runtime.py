"""What lesson scripts share at run time: fast mode, progress bars, figures."""

import os
import sys
from pathlib import Path


def fast_mode():
    """True when a lesson should shrink its training: under the repository's
    tests (COURSE_FAST=1) or while nbgrader grades it (NBGRADER_EXECUTION)."""
    return bool(os.environ.get("COURSE_FAST") or os.environ.get("NBGRADER_EXECUTION"))


def progress(iterable, desc=None, total=None):
    """A tqdm progress bar; silent while grading (graded cells must not write stderr)."""
    from tqdm.auto import tqdm

    quiet = bool(os.environ.get("NBGRADER_EXECUTION")) or not sys.stderr
    return tqdm(iterable, desc=desc, total=total, disable=quiet, leave=False, mininterval=0.5)


def out_dir():
    """Where lessons save figures: $COURSE_OUT, else `out/` beside the lesson, from the shell
    (`python lessons/01_bigram/bigram.py`: lessons/01_bigram/out) as from Jupyter (which runs a
    notebook in its own folder)."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    in_ipython = "IPython" in sys.modules and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    here = Path(script).resolve().parent if script and str(script).endswith(".py") and not in_ipython else Path.cwd()
    path = Path(os.environ.get("COURSE_OUT") or here / "out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name):
    """Save `fig` as out/<name> and say where; it is also shown in a notebook."""
    path = out_dir() / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"saved {path}")
    return path
