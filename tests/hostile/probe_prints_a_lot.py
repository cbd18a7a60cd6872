# Prints a lot: 100,000 lines from print, 20 MB written straight to file descriptor 1, and a wrong
# bigram_probs that prints as much. The honest exercises pass (printing costs no points), and the
# report shows the start and the end of what was printed, with a note in between.
# expect: bigram_probs=wrong
# says: more bytes not shown
import os
import sys

import torch


def build_vocab(words):
    for i in range(100_000):
        print("building the vocabulary, step", i)
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    return stoi, {i: c for c, i in stoi.items()}


def nll(P, words, stoi):
    os.write(1, b"x" * (20 << 20))
    print("to stderr too", file=sys.stderr)
    n, total = 0, 0.0
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            total += torch.log(P[stoi[a], stoi[b]]).item()
            n += 1
    return -total / n


def bigram_probs(N, k=1):
    for i in range(100_000):
        print("smoothing, step", i)
    return N.float() / N.sum()
