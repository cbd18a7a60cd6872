"""Lesson 01 reference numbers: the count model and the neural bigram.

    python extras/benchmarks/lesson01_bigram.py --data embedded --jobs 2
    python extras/benchmarks/lesson01_bigram.py --data /path/to/names.txt --jobs 2

The functions are the reference solution's (solutions/01_bigram/bigram.py,
loaded without running its cells). Printed: the count model's NLL over all
bigrams of all names (the published figure: 2.4544 with k=1 on names.txt) and
on the course's train/val split, and the neural bigram after 200 full-batch
steps at lr 50 (published: about 2.483 training loss). The count model has no
randomness; the neural bigram's initial weights are drawn with each of three
seeds by default (the lesson's 2147483647, then 1 and 2), summarised as
mean ± spread.
"""

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course.data import load_names, split
from course.loader import load
from seeds import add_arguments, run_seeds

ROOT = Path(__file__).resolve().parents[2]


def run(args, seed):
    torch.set_num_threads(1)
    ref = load(ROOT / "solutions" / "01_bigram" / "bigram.py", "reference_bigram")
    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731

    words = load_names(args.data)
    train, val, test = split(words)
    stoi, itos = ref.build_vocab(words)
    xs_all, _ = ref.bigram_dataset(words, stoi)
    say(f"data {args.data}: {len(words):,} names, {len(xs_all):,} bigrams; "
        f"split {len(train):,}/{len(val):,}/{len(test):,}")
    say(f"uniform: ln {len(stoi)} = {math.log(len(stoi)):.4f}")

    result = {}
    N_all = ref.count_bigrams(words, stoi)
    for k in (0, 1):
        result[f"count_all_k{k}"] = ref.nll(ref.bigram_probs(N_all, k), words, stoi)
    P = ref.bigram_probs(ref.count_bigrams(train, stoi), 1)
    result["count_train"], result["count_val"] = ref.nll(P, train, stoi), ref.nll(P, val, stoi)

    xs, ys = ref.bigram_dataset(train, stoi)
    g = torch.Generator().manual_seed(seed)
    W = torch.randn((len(stoi), len(stoi)), generator=g, requires_grad=True)
    t0 = time.perf_counter()
    losses = [ref.sgd_step(W, xs, ys, lr=50) for _ in range(args.steps)]
    seconds = time.perf_counter() - t0
    xv, yv = ref.bigram_dataset(val, stoi)
    with torch.no_grad():
        train_nll, val_nll = F.cross_entropy(W[xs], ys).item(), F.cross_entropy(W[xv], yv).item()
    result.update({"neural_first": losses[0], "neural_last": losses[-1], "neural_train": train_nll,
                   "neural_val": val_nll, "training_s": seconds})
    say("RESULT " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded", help="embedded (default), classic, or a path to names.txt")
    parser.add_argument("--steps", type=int, default=200)
    add_arguments(parser, [2147483647, 1, 2])
    run_seeds(run, parser.parse_args())


if __name__ == "__main__":
    main()
