"""The speed part of lesson 07's train_fast check: how far each trainer is from its limit, at rest and under load.

    python extras/benchmarks/train_fast_speed.py                  # 10 runs of each trainer
    python extras/benchmarks/train_fast_speed.py --runs 20 --hogs 2 --kind memory

The check (checks/lesson07/exercises.py, _check_train_fast_speed) runs a train_fast on its speed text
and compares its CPU time (the probe's, read by the judge from /proc) with SPEED_MERGES counts of the
pairs of every chunk, timed in the judge. This script times both the same way in one process, on the trainers of
tests/wrong/lesson07.py (the right ones, the lesson's own design that recounts the distinct chunks, a
deliberately slow pure-Python one, the reference solution's, and train_regex under the name
train_fast), `--runs` times each, and prints the fraction spent / (SPEED_MERGES x one count): min,
median, max, and how many runs were above SPEED_LIMIT (a failure, before the check's second try).

`--hogs N` starts N processes that keep a CPU busy while it runs (`--kind cpu`: a Python loop;
`--kind memory`: copies of a 64 MB array, which also evicts the caches), and ends them after.
"""

import argparse
import multiprocessing
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests/ is not installed

from checks.lesson07 import exercises as check  # noqa: E402
from course.loader import load  # noqa: E402
from tests.wrong import lesson07 as W  # noqa: E402


def _hog(kind):
    if kind == "cpu":
        while True:
            sum(i * i for i in range(10_000))
    import numpy as np

    a = np.ones(8 * 2**20)  # 64 MB
    while True:
        b = a.copy()
        a = b


def _cpu_times(check, train_fast, text, vocab_size):
    """As the check measures, in this process: the count's CPU time, and train_fast's after a warm-up."""
    import time

    import regex

    ids = [list(c.encode("utf-8")) for c in regex.findall(check.GPT2_PATTERN, text)]
    train_fast(text[:200], 260, check.GPT2_PATTERN)
    recount = check._recount_cpu(ids)
    start = time.process_time()
    train_fast(text, vocab_size, check.GPT2_PATTERN)
    return recount, time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hogs", type=int, default=0, help="busy processes beside the measurement")
    parser.add_argument("--kind", choices=("cpu", "memory"), default="cpu")
    args = parser.parse_args()
    ref = load(ROOT / "solutions" / "07_bpe" / "bpe.py", "reference_bpe")
    trainers = {
        "reference solution": ref.train_fast,
        "tests/wrong right (heap)": W.train_fast_right,
        "linked lists": W.train_fast_linked_list,
        "pure Python, lists, loop max": W.train_fast_pure_python,
        "dict scanned with max": W.train_fast_dict_scan,
        "distinct chunks recounted": W.using(W.train_fast_calls, merge=W.merge_right),
        "train_regex (wrong)": W.train_fast_is_train_regex,
    }
    text, vocab_size = check._speed_text(), 256 + check.SPEED_MERGES
    hogs = [multiprocessing.Process(target=_hog, args=(args.kind,), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    try:
        print(f"{args.runs} runs, {args.hogs} {args.kind} hogs; limit {check.SPEED_LIMIT} of "
              f"{check.SPEED_MERGES} counts")
        print("| trainer | min | median | max | runs above the limit |\n|---|---:|---:|---:|---:|")
        for name, f in trainers.items():
            fractions = []
            for _ in range(args.runs):
                recount, spent = _cpu_times(check, f, text, vocab_size)
                fractions.append(spent / (check.SPEED_MERGES * recount))
            above = sum(x > check.SPEED_LIMIT for x in fractions)
            print(f"| {name} | {min(fractions):.3f} | {statistics.median(fractions):.3f} | {max(fractions):.3f} "
                  f"| {above} of {args.runs} |", flush=True)
    finally:
        for h in hogs:
            h.terminate()


if __name__ == "__main__":
    main()
