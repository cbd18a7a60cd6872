"""Lesson 01 reference numbers: the count model and the neural bigram.

    python extras/benchmarks/lesson01_bigram.py --data embedded
    python extras/benchmarks/lesson01_bigram.py --data /path/to/names.txt

The functions are the reference solution's (solutions/01_bigram/bigram.py,
loaded without running its cells). Printed: the count model's NLL over all
bigrams of all names (the published figure: 2.4544 with k=1 on names.txt) and
on the course's train/val split, and the neural bigram after 200 full-batch
steps at lr 50 (published: about 2.483 training loss).
"""

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course.data import load_names, split
from course.loader import load

ROOT = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded", help="embedded (default), classic, or a path to names.txt")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = load(ROOT / "solutions" / "01_bigram" / "bigram.py", "reference_bigram")

    words = load_names(args.data)
    train, val, test = split(words)
    stoi, itos = ref.build_vocab(words)
    xs_all, _ = ref.bigram_dataset(words, stoi)
    print(f"data {args.data}: {len(words):,} names, {len(xs_all):,} bigrams; split {len(train):,}/{len(val):,}/{len(test):,}")
    print(f"uniform: ln {len(stoi)} = {math.log(len(stoi)):.4f}")

    N_all = ref.count_bigrams(words, stoi)
    for k in (0, 1):
        print(f"count model, all names, k={k}: NLL {ref.nll(ref.bigram_probs(N_all, k), words, stoi):.4f}")
    P = ref.bigram_probs(ref.count_bigrams(train, stoi), 1)
    print(f"count model, fit on train, k=1: train {ref.nll(P, train, stoi):.4f}  val {ref.nll(P, val, stoi):.4f}")

    xs, ys = ref.bigram_dataset(train, stoi)
    g = torch.Generator().manual_seed(2147483647)
    W = torch.randn((len(stoi), len(stoi)), generator=g, requires_grad=True)
    t0 = time.perf_counter()
    losses = [ref.sgd_step(W, xs, ys, lr=50) for _ in range(args.steps)]
    seconds = time.perf_counter() - t0
    xv, yv = ref.bigram_dataset(val, stoi)
    with torch.no_grad():
        train_nll, val_nll = F.cross_entropy(W[xs], ys).item(), F.cross_entropy(W[xv], yv).item()
    print(f"neural bigram, {args.steps} steps lr 50: loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"NLL train {train_nll:.4f}  val {val_nll:.4f}  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
