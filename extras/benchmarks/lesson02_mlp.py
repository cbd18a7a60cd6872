"""Lesson 02 reference run: the MLP of Bengio et al. (2003) on names, 200k steps.

    python extras/benchmarks/lesson02_mlp.py --data embedded --jobs 2
    python extras/benchmarks/lesson02_mlp.py --data /path/to/names.txt --jobs 2
    python extras/benchmarks/lesson02_mlp.py --n-embd 2 --n-hidden 100 --steps 50000 --drop-at 0.75 --jobs 2

C 27x10, 30 -> tanh 200 -> 27 (11,897 parameters), standard normal init,
batch 32, lr 0.1 then 0.01 after half the steps, one thread. The options
change the sizes and the step of the drop (the third command is the lesson's 2-D embedding model:
d 2, 100 hidden units, 50k steps, drop after three quarters). The model code is
the reference solution's (solutions/02_mlp/mlp.py, loaded without running its
cells), so this run also checks that the solution reaches the published loss.
The split is course.data.split: a seeded shuffle of the names, cut 80/10/10.
Three seeds by default (the lesson's 2147483647, then 1 and 2), each drawing
its own initial weights and batches; the summary gives mean ± spread.
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
    torch.set_num_threads(args.threads)
    lesson = load(ROOT / "solutions" / "02_mlp" / "mlp.py", "reference_mlp")
    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731

    words = load_names(args.data)
    train_words, val_words, test_words = split(words)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    V = len(stoi)
    Xtr, Ytr = lesson.build_dataset(train_words, stoi, 3)
    Xval, Yval = lesson.build_dataset(val_words, stoi, 3)
    Xte, Yte = lesson.build_dataset(test_words, stoi, 3)
    say(f"data {args.data}: {len(words)} names, V={V}; examples train {len(Ytr)} val {len(Yval)} test {len(Yte)}")

    g = torch.Generator().manual_seed(seed)
    params = lesson.init_params(V, n_embd=args.n_embd, n_hidden=args.n_hidden, block_size=3, generator=g)
    say(f"parameters: {sum(p.nelement() for p in params)}; threads {torch.get_num_threads()}; "
        f"torch {torch.__version__}")

    @torch.no_grad()
    def loss(X, Y):
        return F.cross_entropy(lesson.forward(X, *params), Y).item()

    initial = loss(Xtr, Ytr)
    t0 = time.perf_counter()
    for i in range(args.steps):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        lesson.sgd_step(params, Xtr[ix], Ytr[ix], 0.1 if i < int(args.steps * args.drop_at) else 0.01)
        if (i + 1) % (args.steps // 10 or 1) == 0:
            say(f"step {i + 1:7d}  val {loss(Xval, Yval):.4f}  ({time.perf_counter() - t0:.0f} s)")
    result = {"initial": initial, "train": loss(Xtr, Ytr), "val": loss(Xval, Yval), "test": loss(Xte, Yte),
              "training_s": time.perf_counter() - t0}
    say("RESULT " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded", help="embedded (default), classic, or a path to names.txt")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-embd", type=int, default=10, help="embedding size d (default 10)")
    parser.add_argument("--n-hidden", type=int, default=200, help="hidden units (default 200)")
    parser.add_argument("--drop-at", type=float, default=0.5, help="fraction of the steps before lr 0.1 -> 0.01")
    add_arguments(parser, [2147483647, 1, 2])
    run_seeds(run, parser.parse_args())


if __name__ == "__main__":
    main()
