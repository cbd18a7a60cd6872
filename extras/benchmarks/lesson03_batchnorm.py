"""Lesson 03 benchmark: the full reference run of the BatchNorm MLP.

    python extras/benchmarks/lesson03_batchnorm.py --data embedded
    python extras/benchmarks/lesson03_batchnorm.py --data /path/to/names.txt

The recipe (lesson-facts.md, section 03): context 3, embedding C 27x10,
Linear 30 -> 200 without bias (Kaiming normal, tanh gain 5/3), BatchNorm
(momentum 0.001, eps 1e-5), tanh, Linear 200 -> 27 (weights N(0, 0.01^2),
bias 0); batch 32, 200k SGD steps, lr 0.1 then 0.01 from step 100k; one
thread. Prints train/val loss with the running statistics, and again with
population statistics recomputed on the whole training set (Wu & Johnson
2021), and the wall time. Plain torch only, so it does not depend on the
lesson's code.
"""

import argparse
import math
import platform
import time

import torch
import torch.nn.functional as F

from course.data import load_names, split


def build_dataset(words, stoi, block_size):
    """(X, Y): every (context of block_size tokens, next token) of the '.'-padded words."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="embedded", help="embedded | classic | path to names.txt")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=2147483647)
    args = p.parse_args()

    torch.set_num_threads(1)  # small batches: one thread is several times faster
    block_size, n_embd, n_hidden, batch_size = 3, 10, 200, 32
    words = load_names(args.data)
    train_words, val_words, test_words = split(words)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    V = len(stoi)
    Xtr, Ytr = build_dataset(train_words, stoi, block_size)
    Xva, Yva = build_dataset(val_words, stoi, block_size)
    print(f"data {args.data}: {len(words)} names, vocab {V}, train {len(Xtr)} / val {len(Xva)} examples")

    g = torch.Generator().manual_seed(args.seed)
    fan_in = n_embd * block_size
    C = torch.randn(V, n_embd, generator=g)
    W1 = torch.randn(fan_in, n_hidden, generator=g) * (5 / 3) / math.sqrt(fan_in)
    W2 = torch.randn(n_hidden, V, generator=g) * 0.01
    b2 = torch.zeros(V)
    gamma, beta = torch.ones(n_hidden), torch.zeros(n_hidden)
    running_mean, running_var = torch.zeros(n_hidden), torch.ones(n_hidden)
    momentum, eps = 0.001, 1e-5
    params = [C, W1, W2, b2, gamma, beta]
    for t in params:
        t.requires_grad_()
    print(f"parameters: {sum(t.numel() for t in params)}")

    def loss_of(X, Y, mean, var):
        h = torch.tanh(gamma * (C[X].view(len(X), -1) @ W1 - mean) / torch.sqrt(var + eps) + beta)
        return F.cross_entropy(h @ W2 + b2, Y).item()

    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(args.steps):
        ix = torch.randint(0, len(Xtr), (batch_size,), generator=g)
        hpre = C[Xtr[ix]].view(batch_size, -1) @ W1
        mean = hpre.mean(0)
        var = hpre.var(0, unbiased=False)  # normalise with the biased variance ...
        h = torch.tanh(gamma * (hpre - mean) / torch.sqrt(var + eps) + beta)
        loss = F.cross_entropy(h @ W2 + b2, Ytr[ix])
        with torch.no_grad():  # ... and keep the unbiased one, as nn.BatchNorm1d does
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * hpre.var(0, unbiased=True))
        for t in params:
            t.grad = None
        loss.backward()
        lr = 0.1 if step < args.steps // 2 else 0.01
        with torch.no_grad():
            for t in params:
                t -= lr * t.grad
        if step % 10_000 == 0:
            print(f"step {step:7d}  batch loss {loss.item():.4f}  {time.perf_counter() - start:6.1f} s", flush=True)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start

    with torch.no_grad():
        tr = loss_of(Xtr, Ytr, running_mean, running_var)
        va = loss_of(Xva, Yva, running_mean, running_var)
        hpre = C[Xtr].view(len(Xtr), -1) @ W1  # population statistics of the whole training set
        pop_mean, pop_var = hpre.mean(0), hpre.var(0, unbiased=True)
        tr_pop = loss_of(Xtr, Ytr, pop_mean, pop_var)
        va_pop = loss_of(Xva, Yva, pop_mean, pop_var)
    print(f"running statistics:    train {tr:.4f}  val {va:.4f}")
    print(f"population statistics: train {tr_pop:.4f}  val {va_pop:.4f}")
    print(f"{args.steps} steps in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU ({platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread)")


if __name__ == "__main__":
    main()
