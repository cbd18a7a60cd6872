"""Lesson 05 benchmark: the WaveNet-like hierarchy, and the same model as a stack
of causal dilated convolutions trained on every position of each name.

    python extras/benchmarks/lesson05_wavenet.py --data classic --model hierarchy --jobs 2
    python extras/benchmarks/lesson05_wavenet.py --data embedded --model conv --steps 25000 --jobs 2

The recipe (lesson-facts.md, section 05): context 8, embedding 27x24, three
levels of [pairs concatenated, Linear without bias, BatchNorm1d (momentum
0.1, eps 1e-5), tanh] with 128 units, Linear 128 -> 27 (weight scaled by 0.1,
bias 0): 76,579 parameters. Weights N(0, 1/fan_in), embedding N(0, 1), drawn
in that order from one generator (seed 2147483647, then 1 and 2 by default:
three runs, summarised as mean ± spread). SGD, learning rate 0.1, then 0.01
for the last quarter of the steps; one thread.

--model hierarchy: batches of 32 windows (200k steps by default).
--model conv: the same initial weights as convolutions (kernel 2, dilations
1, 2, 4, no padding; the names are fed with 8 start tokens), batches of 32
random names padded on the right with '.' to the longest of the batch, the
loss over every real position (padding targets ignored); 25k steps by
default. --batching same-length draws 32 names of one length instead (no
padding, but the BatchNorm statistics then tell the model the length).

Both are evaluated in evaluation mode on the same examples: every window of
the train and validation names (the convolution stack gives exactly one
output for a window of 8 tokens). Plain torch only (F.batch_norm, F.conv1d),
so it does not depend on the lesson's code.
"""

import argparse
import math
import platform
import time

import torch
import torch.nn.functional as F

from course.data import load_names, split
from seeds import add_arguments, run_seeds

BLOCK, N_EMBD, N_HIDDEN, LEVELS = 8, 24, 128, 3


def build_dataset(words, stoi, block_size):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def padded_names(words, stoi):
    """X int64 (n, 8 + Lmax): 8 start tokens, the name, '.' after it; Y int64 (n, Lmax + 1):
    the targets of each window, -100 (ignored by F.cross_entropy) after the name's end; lengths (n,)."""
    Lmax = max(len(w) for w in words)
    X = torch.zeros(len(words), BLOCK + Lmax, dtype=torch.int64)
    Y = torch.full((len(words), Lmax + 1), -100, dtype=torch.int64)
    for i, w in enumerate(words):
        ids = [stoi[c] for c in w]
        X[i, BLOCK:BLOCK + len(w)] = torch.tensor(ids, dtype=torch.int64)
        Y[i, :len(w) + 1] = torch.tensor(ids + [0])
    return X, Y, torch.tensor([len(w) for w in words])


def length_groups(words, stoi):
    """{L: (X (n, 8 + L) inputs, Y (n, L + 1) targets)} for the names of length L."""
    groups = {}
    for w in words:
        groups.setdefault(len(w), []).append([0] * BLOCK + [stoi[c] for c in w] + [0])
    return {L: (torch.tensor(s)[:, :-1], torch.tensor(s)[:, BLOCK:]) for L, s in sorted(groups.items())}


def init(V, seed):
    g = torch.Generator().manual_seed(seed)
    P = {"C": torch.randn(V, N_EMBD, generator=g)}
    fan_in = N_EMBD
    for level in range(LEVELS):
        P[f"W{level}"] = torch.randn(2 * fan_in, N_HIDDEN, generator=g) / math.sqrt(2 * fan_in)
        P[f"gamma{level}"], P[f"beta{level}"] = torch.ones(N_HIDDEN), torch.zeros(N_HIDDEN)
        fan_in = N_HIDDEN
    P["Wout"] = torch.randn(N_HIDDEN, V, generator=g) / math.sqrt(N_HIDDEN) * 0.1
    P["bout"] = torch.zeros(V)
    for t in P.values():
        t.requires_grad_()
    stats = [(torch.zeros(N_HIDDEN), torch.ones(N_HIDDEN)) for _ in range(LEVELS)]
    return P, stats


def batch_norm(x, P, stats, level, training):
    """BatchNorm1d over every dimension but the last of a (B, T, C) or (B, C) tensor."""
    mean, var = stats[level]
    if x.ndim == 3:  # F.batch_norm wants (B, C, T)
        return F.batch_norm(x.transpose(1, 2), mean, var, P[f"gamma{level}"], P[f"beta{level}"], training,
                            0.1, 1e-5).transpose(1, 2)
    return F.batch_norm(x, mean, var, P[f"gamma{level}"], P[f"beta{level}"], training, 0.1, 1e-5)


def hierarchy(P, stats, X, training):
    x = P["C"][X]  # (B, 8, E)
    for level in range(LEVELS):
        B, T, E = x.shape
        x = x.reshape(B, T // 2, 2 * E) @ P[f"W{level}"]
        x = torch.tanh(batch_norm(x, P, stats, level, training))
    return x.squeeze(1) @ P["Wout"] + P["bout"]


def conv_stack(P, stats, X, training):
    """The same weights as causal convolutions, no padding: (B, T) -> (B, T - 7, V)."""
    x = P["C"][X].transpose(1, 2)  # (B, E, T), the layout of F.conv1d
    for level in range(LEVELS):
        W = P[f"W{level}"]  # rows [earlier tap; later tap]
        kernel = W.view(2, W.shape[0] // 2, N_HIDDEN).permute(2, 1, 0)  # (C_out, C_in, 2)
        x = F.conv1d(x, kernel, dilation=2**level)
        mean, var = stats[level]
        x = torch.tanh(F.batch_norm(x, mean, var, P[f"gamma{level}"], P[f"beta{level}"], training, 0.1, 1e-5))
    return x.transpose(1, 2) @ P["Wout"] + P["bout"]


def evaluate(model, P, stats, X, Y):
    with torch.no_grad():
        logits = model(P, stats, X, False)
        return F.cross_entropy(logits.reshape(len(X), -1), Y).item()


def run(args, seed):
    steps = args.steps or (200_000 if args.model == "hierarchy" else 25_000)
    every = args.log_every or steps // 20

    say = lambda text: print(f"[seed {seed}] {text}", flush=True)  # noqa: E731
    torch.set_num_threads(1)  # small batches: one thread is several times faster
    words = load_names(args.data)
    train_words, val_words, _ = split(words)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    V = len(stoi)
    Xtr, Ytr = build_dataset(train_words, stoi, BLOCK)
    Xva, Yva = build_dataset(val_words, stoi, BLOCK)
    say(f"data {args.data}: {len(words)} names, vocab {V}, train {len(Xtr)} / val {len(Xva)} examples")
    P, stats = init(V, seed)
    params = list(P.values())
    say(f"model {args.model}: {sum(t.numel() for t in params):,} parameters")

    g = torch.Generator().manual_seed(seed + 1)
    if args.model == "hierarchy":
        model = hierarchy

        def batch():
            ix = torch.randint(0, len(Xtr), (args.batch,), generator=g)
            return Xtr[ix], Ytr[ix]
    elif args.batching == "padded":
        model = conv_stack
        Xn, Yn, lengths = padded_names(train_words, stoi)

        def batch():
            ix = torch.randint(0, len(Xn), (args.batch,), generator=g)
            L = lengths[ix].max().item()  # crop the padding to the longest name of the batch
            return Xn[ix, :BLOCK + L], Yn[ix, :L + 1]
    else:  # names of one length per batch: no padding, but see lesson05.md (the length leaks)
        model = conv_stack
        groups = length_groups(train_words, stoi)
        Ls = list(groups)
        weight = torch.tensor([len(groups[L][0]) * (L + 1) for L in Ls], dtype=torch.float)

        def batch():
            X, Y = groups[Ls[torch.multinomial(weight, 1, generator=g).item()]]
            ix = torch.randint(0, len(X), (args.batch,), generator=g)
            return X[ix], Y[ix]

    seconds, cpu_seconds, predictions = 0.0, 0.0, 0
    for step in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        X, Y = batch()
        logits = model(P, stats, X, True)
        loss = F.cross_entropy(logits.reshape(-1, V), Y.reshape(-1))
        for t in params:
            t.grad = None
        loss.backward()
        lr = 0.1 if step < 0.75 * steps else 0.01
        with torch.no_grad():
            for t in params:
                t -= lr * t.grad
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        predictions += (Y >= 0).sum().item()
        if (step + 1) % every == 0 or step + 1 == steps:
            va = evaluate(model, P, stats, Xva, Yva)
            say(f"step {step + 1:7d}  batch loss {loss.item():.4f}  val {va:.4f}  "
                  f"{seconds:7.1f} s wall {cpu_seconds:7.1f} s CPU  {predictions:,} predictions")

    tr, va = evaluate(model, P, stats, Xtr, Ytr), evaluate(model, P, stats, Xva, Yva)
    say(f"final ({args.model}, {args.data}): train {tr:.4f}  val {va:.4f}")
    # The two forms are one function: the other form, with these weights and statistics, on all val windows.
    other = conv_stack if model is hierarchy else hierarchy
    with torch.no_grad():
        diff = (model(P, stats, Xva, False).reshape(len(Xva), -1) - other(P, stats, Xva, False).reshape(len(Xva), -1))
    say(f"largest |logit difference| hierarchy vs conv stack, {len(Xva)} val windows: {diff.abs().max().item():.2e}")
    say(f"{steps} steps ({predictions:,} predictions) in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU "
          f"(training only; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread)")
    return {"train": tr, "val": va, "logit_diff": diff.abs().max().item(), "training_s": seconds,
            "training_cpu_s": cpu_seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="embedded", help="embedded | classic | path to names.txt")
    p.add_argument("--model", default="hierarchy", choices=["hierarchy", "conv"])
    p.add_argument("--steps", type=int, default=None, help="default 200,000 (hierarchy) or 25,000 (conv)")
    p.add_argument("--batch", type=int, default=32, help="windows (hierarchy) or names (conv) per step")
    p.add_argument("--batching", default="padded", choices=["padded", "same-length"],
                   help="conv: random names padded on the right (default), or names of one length")
    add_arguments(p, [2147483647, 1, 2])
    p.add_argument("--log-every", type=int, default=None, help="steps between validation losses")
    run_seeds(run, p.parse_args())


if __name__ == "__main__":
    main()
