"""Lesson 03 benchmark: the full run of the lesson's BatchNorm MLP, over three seeds.

    python extras/benchmarks/lesson03_batchnorm.py --data embedded --jobs 2
    python extras/benchmarks/lesson03_batchnorm.py --data /path/to/names.txt --jobs 2

The model and its training are the lesson's own (solutions/03_batchnorm/batchnorm.py,
loaded without running its cells): `build_dataset`, `init_mlp` (b1 is drawn, not
used), `BatchNorm1d` (momentum 0.001), `bn_mlp_forward`, `set_training` and
`recompute_population_stats`, with the lesson's loop: batch 32, 200k SGD steps,
lr 0.1 then 0.01 from step 100k, one thread. It prints train/val loss with the
running statistics, then with population statistics recomputed on the whole
training set (Wu & Johnson 2021). Three seeds by default (the lesson's
2147483647, then 1 and 2); the summary gives mean ± spread.
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course.data import load_names, split
from course.loader import load
from seeds import add_arguments, run_seeds

ROOT = Path(__file__).resolve().parents[2]


def run(args, seed):
    torch.set_num_threads(1)  # small batches: one thread is several times faster
    lesson = load(ROOT / "solutions" / "03_batchnorm" / "batchnorm.py", "reference_batchnorm")
    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731
    words = load_names(args.data)
    train_words, val_words, _ = split(words)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    V = len(stoi)
    Xtr, Ytr = lesson.build_dataset(train_words, stoi, lesson.BLOCK_SIZE)
    Xva, Yva = lesson.build_dataset(val_words, stoi, lesson.BLOCK_SIZE)
    say(f"data {args.data}: {len(words)} names, vocab {V}, train {len(Xtr)} / val {len(Xva)} examples")

    g = torch.Generator().manual_seed(seed)
    params = lesson.init_mlp(V, lesson.BLOCK_SIZE, 10, 200, g)
    bn = lesson.BatchNorm1d(200, momentum=0.001)
    trained = [params[k] for k in ("C", "W1", "W2", "b2")] + bn.parameters()  # b1 is not used

    def loss_of(X, Y):
        with torch.no_grad():
            return F.cross_entropy(lesson.bn_mlp_forward(params, bn, X), Y).item()

    start = time.perf_counter()
    for step in range(args.steps):
        ix = torch.randint(0, len(Xtr), (32,), generator=g)
        loss = F.cross_entropy(lesson.bn_mlp_forward(params, bn, Xtr[ix]), Ytr[ix])
        for p in trained:
            p.grad = None
        loss.backward()
        lr = 0.1 if step < args.steps // 2 else 0.01
        with torch.no_grad():
            for p in trained:
                p -= lr * p.grad
        if step % 20_000 == 0:
            say(f"step {step:7d}  batch loss {loss.item():.4f}  {time.perf_counter() - start:6.1f} s")
    training_s = time.perf_counter() - start

    lesson.set_training([bn], False)
    result = {"train": loss_of(Xtr, Ytr), "val": loss_of(Xva, Yva)}
    layers = [lesson.Fn(lambda x: x @ params["W1"]), bn, lesson.Tanh(),
              lesson.Fn(lambda x: x @ params["W2"] + params["b2"])]
    lesson.recompute_population_stats(params["C"], layers, Xtr)
    result.update({"train_pop": loss_of(Xtr, Ytr), "val_pop": loss_of(Xva, Yva), "training_s": training_s})
    say("RESULT " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="embedded", help="embedded | classic | path to names.txt")
    p.add_argument("--steps", type=int, default=200_000)
    add_arguments(p, [2147483647, 1, 2])
    run_seeds(run, p.parse_args())


if __name__ == "__main__":
    main()
