"""Run some of a lesson's code cells in full mode: the figures of one cell without the whole lesson.

    MPLBACKEND=Agg python extras/benchmarks/lesson_cells.py solutions/02_mlp/mlp.py \\
        --skip "sweep_steps = " "curse = []" "steps = 2_000 if fast_mode()" "bucket = max(" \\
        --before "val_loss = float('nan'); steps = 0" --stop "few = train_words[:500]"

Every code cell of the lesson script runs in order, as `python lesson.py` would run it with
COURSE_FAST unset, except the cells that contain one of the --skip strings; the run ends after
the first cell that contains the --stop string. --before runs first (to define what a skipped
cell would have defined). The cells are deterministic, so a cell gives the numbers it gives in
the whole lesson's full run, provided that the cells it depends on ran. Figures go to $COURSE_OUT
(default: a temporary folder).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from course.cells import py_cells  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a lesson script, e.g. solutions/03_batchnorm/batchnorm.py")
    parser.add_argument("--skip", nargs="*", default=[], help="leave out the code cells that contain these strings")
    parser.add_argument("--stop", help="end after the first code cell that contains this string")
    parser.add_argument("--before", default="", help="Python code to run before the first cell")
    args = parser.parse_args()
    for name in ("COURSE_FAST", "NBGRADER_EXECUTION"):
        os.environ.pop(name, None)  # full mode
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("COURSE_OUT", tempfile.mkdtemp(prefix="lesson_cells_"))
    script = Path(args.script).resolve()
    namespace = {"__name__": "__main__", "__file__": str(script)}
    exec(args.before, namespace)
    start = time.process_time()
    for kind, line, _, source in py_cells(script.read_text(encoding="utf-8")):
        if kind != "code" or any(s in source for s in args.skip):
            continue
        exec(compile(source, f"{script}:{line}", "exec"), namespace)
        if args.stop and args.stop in source:
            break
    print(f"[{time.process_time() - start:.1f} s of CPU]")


if __name__ == "__main__":
    main()
