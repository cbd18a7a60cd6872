"""Lesson 04 in full: the BatchNorm MLP trained with manual gradients only.

    python extras/benchmarks/lesson04_backprop.py --data /path/to/names.txt --jobs 2  # parity with the published run
    python extras/benchmarks/lesson04_backprop.py --data embedded --jobs 2            # the course's default data
    python extras/benchmarks/lesson04_backprop.py --diffs                             # largest check differences

The training run takes the lesson's own functions (build_dataset, init_params,
train_step, population_stats, evaluate) from solutions/ (or --lessons DIR, a
learner's copy), loaded without running the lesson's cells, and runs the
lesson's loop: n_hidden 200, batch 32, 200,000 SGD steps, lr 0.1 then 0.01,
one torch thread, no autograd anywhere; three seeds by default (the lesson's
2147483647, then 1 and 2), summarised as mean ± spread. --diffs runs every check of the lesson
on many seeds and prints, per gradient, the largest difference a correct
solution showed from the float64 autograd referee.
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from checks.lesson04 import exercises as check  # noqa: E402
from course import lessons as registry  # noqa: E402
from course.data import load_names, split  # noqa: E402
from course.loader import load  # noqa: E402
from seeds import add_arguments, run_seeds  # noqa: E402


def run(args, seed):
    torch.set_num_threads(1)
    lesson = load(registry.get("04").script(args.lessons), "lesson04_benchmark")
    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731
    words = load_names(args.data)
    train_words, val_words, test_words = split(words)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    Xtr, Ytr = lesson.build_dataset(train_words, stoi)
    Xval, Yval = lesson.build_dataset(val_words, stoi)
    Xte, Yte = lesson.build_dataset(test_words, stoi)
    say(f"data {args.data}: {len(words)} names; examples train {len(Xtr)}, val {len(Xval)}, test {len(Xte)}")
    g = torch.Generator().manual_seed(seed)
    params = lesson.init_params(len(stoi), n_embd=10, n_hidden=args.hidden, block_size=Xtr.shape[1], generator=g)
    say(f"{sum(p.numel() for p in params.values())} parameters, {args.steps} steps")
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(args.steps):
            ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
            loss = lesson.train_step(params, Xtr[ix], Ytr[ix], 0.1 if i < args.steps // 2 else 0.01)
            if i % 20_000 == 0 or i == args.steps - 1:
                say(f"step {i:7d}  batch loss {loss:.4f}  {time.perf_counter() - start:7.1f} s")
    training_s = time.perf_counter() - start
    bnmean, bnvar = lesson.population_stats(params, Xtr)
    result = {name: lesson.evaluate(params, X, Y, bnmean, bnvar)
              for name, X, Y in (("train", Xtr, Ytr), ("val", Xval, Yval), ("test", Xte, Yte))}
    result["training_s"] = training_s
    say("RESULT " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def diffs(lesson, seeds):
    names = ["backward_loss", "backward_softmax", "backward_output_layer", "backward_bn_affine", "backward_bn_stats",
             "backward_first_layer", "backward_embedding", "backward_all", "cross_entropy_backward",
             "batchnorm_backward", "train_step"]
    worst = defaultdict(lambda: (0.0, 0.0))
    for name in names:
        for seed in seeds:
            check.observed = []
            getattr(check, name)(getattr(lesson, name), seed=seed)
            for label, diff, rel in check.observed:
                key = (name, label)
                worst[key] = (max(worst[key][0], diff), max(worst[key][1], rel))
    check.observed = None
    print(f"largest difference from the float64 referee over seeds {seeds[0]}..{seeds[-1]} "
          f"(relative = / scale; a check fails above {check.RTOL:g} per element relative or {check.ATOL:g} of scale)")
    print(f"{'check':<24} {'gradient':<16} {'max abs diff':>12} {'relative':>10}")
    for (name, label), (diff, rel) in worst.items():
        print(f"{name:<24} {label:<16} {diff:12.2e} {rel:10.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="embedded", help="embedded | classic | path to names.txt")
    parser.add_argument("--lessons", default=str(registry.solutions_dir()), help="folder laid out like lessons/")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--diffs", action="store_true", help="measure check differences instead of training")
    parser.add_argument("--diff-seeds", type=int, default=20, help="with --diffs: how many check seeds")
    add_arguments(parser, [2147483647, 1, 2])
    args = parser.parse_args()
    if args.diffs:
        torch.set_num_threads(1)
        diffs(load(registry.get("04").script(args.lessons), "lesson04_benchmark"), list(range(args.diff_seeds)))
    else:
        run_seeds(run, args)


if __name__ == "__main__":
    main()
