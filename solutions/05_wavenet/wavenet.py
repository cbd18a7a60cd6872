# %% [markdown]
# # Lesson 05: a WaveNet-like hierarchy, then real causal dilated convolutions
#
# Lessons 02 and 03 predicted the next character of a name from the three
# before it with a flat MLP: embed the characters, concatenate them, one
# hidden layer. This lesson asks what it takes to look further back, eight
# characters, and finds an architecture that grows gracefully with the
# context. It has two halves:
#
# 1. **A hierarchy.** Instead of squashing eight characters into one hidden
#    layer at once, fuse neighbours two by two: pairs, then pairs of pairs,
#    then the whole window, a tree of depth $\log_2 8 = 3$. Karpathy's
#    *makemore* lectures build this model with reshapes and call it
#    "WaveNet-like". We build it the same way first, from layers written in
#    the style of `torch.nn`: `Embedding`, `FlattenConsecutive`,
#    `BatchNorm1d` for 3-D inputs, `Sequential`.
# 2. **The real thing.** The tree applies one weight matrix to every pair at
#    a level: that is a convolution. WaveNet (van den Oord et al. 2016) stacks
#    *causal dilated convolutions* with dilations 1, 2, 4, ... so that a few
#    layers see far back. We write that convolution, prove that the
#    hierarchy *is* such a stack (copy the weights over and the logits agree),
#    and then use what the hierarchy cannot: the stack predicts at **every
#    position of a name in one forward pass**, so it trains on all positions
#    at once.
#
# References:
#
# - A. van den Oord, S. Dieleman, H. Zen, K. Simonyan, O. Vinyals, A. Graves,
#   N. Kalchbrenner, A. Senior, K. Kavukcuoglu. *WaveNet: A Generative Model
#   for Raw Audio.* 2016, arXiv:1609.03499.
# - Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin. *A Neural Probabilistic
#   Language Model.* JMLR 3, 2003 (the flat model of lesson 02).
# - S. Ioffe, C. Szegedy. *Batch Normalization.* ICML 2015, arXiv:1502.03167.
#
# **How to work.** Fill in each `YOUR CODE HERE`, keep the signatures, and run
# the checks: `pytest checks/lesson05` (all) or `pytest checks/lesson05 -k
# CausalConv1d` (one). The cell after each exercise runs the same check.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from checks.lesson05 import exercises as check
from course.data import load_names, split
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small batches: one thread is several times faster here

# %% [markdown]
# ## The data
#
# The names and the 80/10/10 split of lessons 01-03, now with a context of
# `BLOCK_SIZE = 8` characters. Every position of every `.`-padded name is one
# example: the eight previous tokens (`.` before the start) and the next one.

# %%
DATA = "embedded"  # or "classic", or a path to makemore's names.txt
BLOCK_SIZE = 8


def build_dataset(words, stoi, block_size):
    """(X, Y): X int64 (n, block_size) contexts, Y int64 (n,) next tokens."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.int64), torch.tensor(Y, dtype=torch.int64)


# %%
words = load_names(DATA)
train_words, val_words, test_words = split(words)
chars = sorted(set("".join(words)))
stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
itos = {i: c for c, i in stoi.items()}
V = len(stoi)
Xtr, Ytr = build_dataset(train_words, stoi, BLOCK_SIZE)
Xva, Yva = build_dataset(val_words, stoi, BLOCK_SIZE)
print(f"{len(words)} names, vocabulary {V}; examples: train {len(Xtr)}, val {len(Xva)}")
for x, y in zip(Xtr[:6], Ytr[:6]):
    print("".join(itos[i] for i in x.tolist()), "->", itos[y.item()])

# %% [markdown]
# ## Part 1: layers as modules
#
# Lesson 03 ended with a list of layers and loops over it. `torch.nn` packs
# the same idea into *modules*: each layer knows its parameters and its mode
# (training or evaluation), and a container runs layers in order and passes
# `parameters()`, `train()` and `eval()` on to all of them. We write our own
# small versions, with the same names and the same behaviour as `torch.nn`,
# except one thing: our sequences are laid out **(batch, time, channels)**,
# `(B, T, C)`, the layout that `Linear` acts on (it multiplies the last
# dimension). `torch.nn.Conv1d` and `torch.nn.BatchNorm1d` expect
# `(B, C, T)` instead; the checks compare with them on transposed inputs.
#
# Given: the base class, `Linear` (weights $\mathcal N(0, 1/\text{fan-in})$, as
# in lesson 03 without the tanh gain, which BatchNorm makes unnecessary) and
# `Tanh`. Every parameter is created as a leaf tensor with
# `requires_grad=True`.

# %%
class Module:
    """What every layer shares: a mode and a list of parameters."""

    training = True

    def parameters(self):
        return []

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)


class Linear(Module):
    """y = x @ weight + bias on the last dimension; weight (fan_in, fan_out)."""

    def __init__(self, fan_in, fan_out, bias=True, generator=None):
        self.weight = (torch.randn(fan_in, fan_out, generator=generator) / fan_in**0.5).requires_grad_()
        self.bias = torch.zeros(fan_out, requires_grad=True) if bias else None

    def __call__(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class Tanh(Module):
    def __call__(self, x):
        return torch.tanh(x)


# %% [markdown]
# ## Exercise 1: `Embedding`
#
# A lookup table: row $i$ of `weight` is the vector of token $i$. Called on an
# integer tensor of any shape, it returns the rows, with one more dimension
# at the end: `(B, T)` indices give `(B, T, embedding_dim)`. Draw `weight`
# from $\mathcal N(0, 1)$ with `generator`. Indexing is differentiable: the
# gradient of a row is the sum of the gradients of the places it was used.

# %% nbgrader={"grade": false, "grade_id": "Embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Embedding(Module):
    """A table of num_embeddings vectors of size embedding_dim.

    Attributes: weight, float32 (num_embeddings, embedding_dim), N(0, 1) drawn
    with `generator`, a leaf with requires_grad=True; parameters() == [weight].
    Calling it on an int64 tensor IX of any shape returns weight[IX], of shape
    IX.shape + (embedding_dim,).
    """

    def __init__(self, num_embeddings, embedding_dim, generator=None):
        ### BEGIN SOLUTION
        self.weight = torch.randn(num_embeddings, embedding_dim, generator=generator).requires_grad_()
        ### END SOLUTION

    def __call__(self, IX):
        ### BEGIN SOLUTION
        return self.weight[IX]
        ### END SOLUTION

    def parameters(self):
        ### BEGIN SOLUTION
        return [self.weight]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_Embedding", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.Embedding(Embedding)
### BEGIN HIDDEN TESTS
check.Embedding(Embedding, seed=505)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: `FlattenConsecutive`
#
# The flat MLP concatenated all `T` embeddings of a context into one vector:
# `(B, T, C) -> (B, T*C)`. The hierarchy concatenates only `n` consecutive
# ones at a time:
#
# $$(B, T, C) \to (B, T/n, n C), \qquad \text{out}[b, i] = [x_{b, in}, x_{b, in+1}, \dots, x_{b, in+n-1}] .$$
#
# The $n$ vectors of group $i$ appear in time order, earliest first. A
# contiguous tensor is stored row by row, so the $n$ vectors of a group are
# already side by side and `x.reshape(B, T // n, n * C)` moves no data. Use
# `reshape`, not `view`: the input is not always contiguous (the Embedding
# of the windows `tokens.unfold(0, 8, 1)` of a short name, later in this
# lesson, is not), and `.view` refuses such a tensor where `reshape` copies.
#
# When the result has a **single position** ($T = n$), return `(B, n C)`: drop
# the time dimension, so that the last layers of the model see an ordinary
# `(B, features)` batch and the logits come out as `(B, vocab)`. Drop *only*
# that dimension: a batch of one example must stay a batch, `(1, n C)`.

# %% nbgrader={"grade": false, "grade_id": "FlattenConsecutive", "locked": false, "schema_version": 3, "solution": true, "task": false}
class FlattenConsecutive(Module):
    """Concatenate groups of n consecutive positions: (B, T, C) -> (B, T // n, n * C).

    T is a multiple of n. Group i holds positions i*n .. i*n + n - 1 in that
    order. If T == n the result is (B, n * C) (the time dimension is dropped,
    the batch dimension never). Attribute: n. No parameters.
    """

    def __init__(self, n):
        ### BEGIN SOLUTION
        self.n = n
        ### END SOLUTION

    def __call__(self, x):
        ### BEGIN SOLUTION
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        return x
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_FlattenConsecutive", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.FlattenConsecutive(FlattenConsecutive)
### BEGIN HIDDEN TESTS
check.FlattenConsecutive(FlattenConsecutive, seed=909)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: `BatchNorm1d` for 2-D and 3-D inputs
#
# Lesson 03's layer normalised a `(B, C)` batch over dimension 0: one mean and
# one variance per feature. In the hierarchy, a Linear layer after
# `FlattenConsecutive` gives `(B, T, C)` outputs, the same $C$ features at
# each of the $T$ groups. They are computed by **the same weights** at every
# group, so they are the same features, and their statistics must be taken
# over the batch *and* the time dimension: reduce over dimensions `(0, 1)`,
# $N = B \cdot T$ values per feature.
#
# $$\mu_c = \frac1N \sum_{b,t} x_{btc}, \qquad \sigma_c^2 = \frac1N \sum_{b,t} (x_{btc} - \mu_c)^2, \qquad y_{btc} = \gamma_c \frac{x_{btc} - \mu_c}{\sqrt{\sigma_c^2 + \varepsilon}} + \beta_c .$$
#
# **The pitfall.** Reduce over dimension 0 alone and nothing complains:
# `x.mean(0)` of a `(B, T, C)` tensor is `(T, C)`, it broadcasts against `x`,
# and the running mean, updated with it, silently becomes `(T, C)` too. The
# layer then normalises each feature *separately at each position*, with $T$
# times fewer values per statistic, and the running statistics change shape
# on the first step. This was a real bug in the published version of this
# model; the check below catches it.
#
# Everything else is lesson 03's layer, the conventions of
# `torch.nn.BatchNorm1d`: normalise with the biased variance, store the
# unbiased one ($\times N/(N-1)$) in `running_var`,
# `running = (1 - momentum) * running + momentum * batch value`, update the
# running statistics only in training mode, and use them in evaluation mode.

# %% nbgrader={"grade": false, "grade_id": "BatchNorm1d", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BatchNorm1d(Module):
    """Batch normalisation of (B, C) or (B, T, C) inputs, feature dimension last.

    Attributes: gamma (dim,) ones and beta (dim,) zeros, leaves with
    requires_grad=True, parameters() == [gamma, beta]; running_mean (dim,)
    zeros and running_var (dim,) ones, no gradient; eps, momentum; training
    (from Module). Training mode: statistics over every dimension but the
    last (dim 0 of a 2-D input, dims (0, 1) of a 3-D one); normalise with the
    biased variance, update the running statistics with the mean and the
    unbiased variance. Evaluation mode: use the running statistics, change
    nothing. Returns a tensor of the input's shape.
    """

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        ### BEGIN SOLUTION
        self.eps, self.momentum = eps, momentum
        self.gamma = torch.ones(dim, requires_grad=True)
        self.beta = torch.zeros(dim, requires_grad=True)
        self.running_mean = torch.zeros(dim)
        self.running_var = torch.ones(dim)
        ### END SOLUTION

    def __call__(self, x):
        ### BEGIN SOLUTION
        if self.training:
            dims = tuple(range(x.ndim - 1))  # (0,) or (0, 1): every dimension but the features
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() // x.shape[-1]
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta
        ### END SOLUTION

    def parameters(self):
        ### BEGIN SOLUTION
        return [self.gamma, self.beta]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_BatchNorm1d", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.BatchNorm1d(BatchNorm1d)
### BEGIN HIDDEN TESTS
check.BatchNorm1d(BatchNorm1d, seed=1603)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: `Sequential`
#
# A container: it calls its layers in order, and `parameters()`, `train()`
# and `eval()` reach **every** layer, including the layers of a `Sequential`
# nested inside it. The one trap: setting `layer.training = mode` on the
# direct children switches a nested container's flag but not its own layers.
# Ask each layer to switch itself, and it passes the request down.

# %% nbgrader={"grade": false, "grade_id": "Sequential", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Sequential(Module):
    """Layers applied in order: Sequential([l1, l2, l3])(x) == l3(l2(l1(x))).

    Attributes: layers, the list given. parameters(): the parameters of every
    layer, in layer order (a list of tensors). train(mode=True) sets
    self.training and the mode of every layer, nested containers included,
    and returns self; eval() is train(False) (inherited).
    """

    def __init__(self, layers):
        ### BEGIN SOLUTION
        self.layers = layers
        ### END SOLUTION

    def __call__(self, x):
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def parameters(self):
        ### BEGIN SOLUTION
        return [p for layer in self.layers for p in layer.parameters()]
        ### END SOLUTION

    def train(self, mode=True):
        ### BEGIN SOLUTION
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_Sequential", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.Sequential(Sequential)
### BEGIN HIDDEN TESTS
check.Sequential(Sequential, seed=4242)
### END HIDDEN TESTS

# %% [markdown]
# ## Part 2: a flat MLP with a context of eight
#
# With these layers, lesson 03's MLP with a context of 8 is six lines:
# `FlattenConsecutive(8)` turns `(B, 8, 10)` embeddings into `(B, 80)`, the
# concatenation of lesson 02.
#
# One training loop serves every model of this lesson. `batches(gen)` returns
# a batch `(X, Y)`; the loss is the cross-entropy over every prediction in the
# batch, whatever the shape of the logits. The loop also keeps the wall time,
# so that models can be compared by what they cost.

# %%
def train(model, steps, batches, lr=0.1, lr_drop_at=0.75, seed=0, evaluate=None, every=None):
    """SGD on model.parameters(); lr drops tenfold after a fraction lr_drop_at of the steps.

    Targets equal to -100 are ignored (F.cross_entropy's default ignore_index).
    Returns ([(seconds of training so far, loss) per step], [(step, seconds, evaluate(model))]).
    """
    gen = torch.Generator().manual_seed(seed)
    params = model.parameters()
    losses, log, seconds = [], [], 0.0
    for step in progress(range(steps), desc="train"):
        start = time.perf_counter()
        X, Y = batches(gen)
        logits = model(X)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        for p in params:
            p.grad = None
        loss.backward()
        rate = lr if step < lr_drop_at * steps else lr / 10
        with torch.no_grad():
            for p in params:
                p -= rate * p.grad
        seconds += time.perf_counter() - start
        losses.append((seconds, loss.item()))
        if evaluate is not None and ((step + 1) % every == 0 or step + 1 == steps):
            log.append((step + 1, seconds, evaluate(model)))
    return losses, log


def example_batches(X, Y, batch_size=32):
    """Random examples (contexts and next tokens), batch_size of them per step."""
    return lambda gen: (lambda ix: (X[ix], Y[ix]))(torch.randint(0, len(X), (batch_size,), generator=gen))


def split_loss(model, X, Y):
    """Mean cross-entropy of the model's last-position predictions, in evaluation mode."""
    model.eval()
    with torch.no_grad():
        logits = model(X)
        loss = F.cross_entropy(logits.reshape(len(X), -1), Y).item()
    model.train()
    return loss


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# %%
STEPS = 300 if fast_mode() else 20_000
EVALS = 2 if fast_mode() else 10  # validation losses per run, for the curves
g = torch.Generator().manual_seed(2147483647)
flat = Sequential([
    Embedding(V, 10, generator=g), FlattenConsecutive(BLOCK_SIZE),
    Linear(10 * BLOCK_SIZE, 200, bias=False, generator=g), BatchNorm1d(200), Tanh(),
    Linear(200, V, generator=g),
])
with torch.no_grad():
    flat.layers[-1].weight *= 0.1  # small logits at the start: loss near ln V
print(f"flat MLP, context {BLOCK_SIZE}: {n_params(flat):,} parameters; logits of shape {tuple(flat(Xtr[:4]).shape)}")
evaluate = lambda m: split_loss(m, Xva, Yva)  # noqa: E731
flat_losses, flat_log = train(flat, STEPS, example_batches(Xtr, Ytr), evaluate=evaluate, every=STEPS // EVALS)
print(f"flat MLP after {STEPS} steps: val {flat_log[-1][2]:.4f}  ({flat_log[-1][1]:.1f} s)")
if fast_mode():
    print("fast mode: 300 steps per model instead of 20,000, so the losses, times and curves of this lesson are "
          "far from the full run's; the text quotes the full run")

# %% [markdown]
# Where do its 22,097 parameters go? 16,000 of them are the first weight
# matrix, $80 \times 200$: every hidden unit reads all eight characters at once,
# through a separate weight for each position. Nothing is shared between
# positions; the unit that recognises "an `e` just before" and the one that
# recognises "an `e` three places before" are learned from scratch, separately.
# Double the context and that matrix doubles, and its single layer has to
# squash twice as much information into the same 200 numbers in one step.
#
# ## Part 3: the hierarchy
#
# Fuse the context gradually. Level 1 looks at pairs of neighbouring
# characters, $(x_0, x_1), (x_2, x_3), (x_4, x_5), (x_6, x_7)$, with **one**
# weight matrix for all four pairs; level 2 fuses pairs of pairs; level 3 the
# two halves:
#
# ```
# level 3                        h3
#                        /               \
# level 2          h2[0]                   h2[1]
#                 /     \                 /     \
# level 1     h1[0]     h1[1]         h1[2]     h1[3]
#             /  \      /  \          /  \      /  \
# chars      x0  x1    x2  x3        x4  x5    x6  x7
# ```
#
# Each level is `FlattenConsecutive(2)`, `Linear` (no bias: BatchNorm's
# $\beta$ does that job), `BatchNorm1d`, `Tanh`. Shapes with batch $B$,
# `n_embd` $E$, `n_hidden` $H$:
#
# | layer | output |
# |---|---|
# | Embedding | (B, 8, E) |
# | FlattenConsecutive(2), Linear(2E, H), BatchNorm1d, Tanh | (B, 4, H) |
# | FlattenConsecutive(2), Linear(2H, H), BatchNorm1d, Tanh | (B, 2, H) |
# | FlattenConsecutive(2), Linear(2H, H), BatchNorm1d, Tanh | (B, H) |
# | Linear(H, V) | (B, V) |
#
# ## Exercise 5: assemble the hierarchy
#
# Write `build_hierarchy` for any `block_size` that is a power of two
# ($\log_2$ of it levels). Create the layers in the order of the table,
# passing `generator` to every layer that draws random numbers, and scale
# the last Linear layer's weight by 0.1 (under `torch.no_grad()`, so that it
# stays a leaf) so that the first loss is close to $\ln V$.

# %% nbgrader={"grade": false, "grade_id": "build_hierarchy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_hierarchy(vocab_size, block_size, n_embd, n_hidden, generator=None):
    """The WaveNet-like hierarchy as a Sequential.

    Layers: Embedding(vocab_size, n_embd); then log2(block_size) levels of
    [FlattenConsecutive(2), Linear(2 * fan_in, n_hidden, bias=False),
    BatchNorm1d(n_hidden), Tanh()], fan_in being n_embd for the first level
    and n_hidden after; then Linear(n_hidden, vocab_size) with its weight
    scaled by 0.1. Input: int64 (B, block_size); output: logits (B, vocab_size).
    """
    ### BEGIN SOLUTION
    layers = [Embedding(vocab_size, n_embd, generator=generator)]
    fan_in = n_embd
    for _ in range(int(math.log2(block_size))):
        layers += [FlattenConsecutive(2), Linear(2 * fan_in, n_hidden, bias=False, generator=generator),
                   BatchNorm1d(n_hidden), Tanh()]
        fan_in = n_hidden
    layers.append(Linear(n_hidden, vocab_size, generator=generator))
    with torch.no_grad():
        layers[-1].weight *= 0.1
    return Sequential(layers)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_build_hierarchy", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.build_hierarchy(build_hierarchy)
### BEGIN HIDDEN TESTS
check.build_hierarchy(build_hierarchy, seed=8080)
### END HIDDEN TESTS

# %% [markdown]
# Two hierarchies: one with about the flat MLP's 22k parameters, and the
# published one, `n_embd` 24 and `n_hidden` 128, 76,579 parameters. Same
# steps, same batches, same learning rates as the flat model.

# %%
g = torch.Generator().manual_seed(2147483647)
small = build_hierarchy(V, BLOCK_SIZE, 10, 68, generator=g)
hier = build_hierarchy(V, BLOCK_SIZE, 24, 128, generator=g)
print(f"parameters: flat {n_params(flat):,}, small hierarchy {n_params(small):,}, hierarchy {n_params(hier):,}")
x = Xtr[:4]
for layer in hier.layers:
    x = layer(x)
    print(f"{type(layer).__name__:>20}: {tuple(x.shape)}")
small_losses, small_log = train(small, STEPS, example_batches(Xtr, Ytr), evaluate=evaluate, every=STEPS // EVALS)
hier_losses, hier_log = train(hier, STEPS, example_batches(Xtr, Ytr), evaluate=evaluate, every=STEPS // EVALS)
for name, log in (("flat MLP", flat_log), ("small hierarchy", small_log), ("hierarchy", hier_log)):
    print(f"{name:>16}: val {log[-1][2]:.4f} after {STEPS} steps, {log[-1][1]:.1f} s of training")
if fast_mode():
    print("fast mode: after 20,000 steps the full run ends at val 2.1214 (flat), 2.1028 (small hierarchy) and "
          "2.0556 (hierarchy); after 300 steps the order can differ")

# %% [markdown]
# In our full-length runs (`extras/benchmarks/lesson05.md`, 200,000 steps,
# learning rate 0.1 then 0.01 for the last quarter) the published hierarchy
# reaches a validation loss of about 1.987 (1.984 to 1.990 over three seeds)
# on makemore's `names.txt` (the published figure is 1.993), against about
# 2.108 for lesson 03's context-3 MLP. In the 20,000 steps of this
# notebook's full run (one seed) the three models ended at
# 2.121 (flat), 2.103 (small hierarchy) and 2.056 (hierarchy) on the
# embedded names: at equal size the hierarchy is only a little better so
# early, and the bigger one pulls ahead.
#
# ### Evaluate in evaluation mode
#
# An upstream version of this notebook computed the validation loss with
# BatchNorm still in training mode. It looks harmless, since with over 20,000
# validation examples the batch statistics are close to the population's, but
# it is wrong twice over: every example's prediction now depends on which
# other examples were evaluated with it (the loss of a single name, or a
# sample drawn one character at a time, would be different, and a batch of
# one is impossible), and the forward pass **updates the running statistics
# with validation data**, so evaluating changes the model.

# %%
before = hier.layers[3].running_mean.clone()
hier.train()
with torch.no_grad():
    train_mode_loss = F.cross_entropy(hier(Xva), Yva).item()
moved = (hier.layers[3].running_mean - before).abs().max().item()
hier.eval()
with torch.no_grad():
    eval_mode_loss = F.cross_entropy(hier(Xva), Yva).item()
    single = [round(F.cross_entropy(hier(Xva[i:i + 1]), Yva[i:i + 1]).item(), 4) for i in range(3)]
hier.train()
print(f"val in training mode {train_mode_loss:.4f}, in evaluation mode {eval_mode_loss:.4f}")
print(f"the training-mode evaluation moved running_mean of the first BatchNorm by up to {moved:.4f}")
print(f"evaluation mode works one example at a time: losses of the first three examples {single}")

# %% [markdown]
# ### The BatchNorm pitfall, seen
#
# Here is what a `BatchNorm1d` that reduces over dimension 0 only does with the
# first level's `(B, 4, H)` pre-activations: its statistic has one entry per
# *position and* feature, and the running mean it updates changes shape.

# %%
with torch.no_grad():
    pre = hier.layers[2](hier.layers[1](hier.layers[0](Xtr[:32])))  # (32, 4, 128): level 1, before BatchNorm
    running_mean = torch.zeros(128)
    running_mean = 0.9 * running_mean + 0.1 * pre.mean(0)  # the bug: dimension 0 only
    print(f"pre-activations {tuple(pre.shape)}; mean over dim 0: {tuple(pre.mean(0).shape)}, "
          f"over dims (0, 1): {tuple(pre.mean((0, 1)).shape)}")
    print(f"running_mean after one buggy update: {tuple(running_mean.shape)} (was (128,))")
    spread = (pre.mean(0) - pre.mean((0, 1))).abs().mean() / pre.std((0, 1)).mean()
    print(f"per-position means differ from the pooled mean by {spread:.2f} standard deviations on average")

# %% [markdown]
# ## Part 4: the hierarchy is a convolution
#
# Look at level 1 again. It computes, for pairs $(x_{2i}, x_{2i+1})$,
#
# $$h_1[i] = W_1^\top [x_{2i}; x_{2i+1}] = W_{1,a}^\top x_{2i} + W_{1,b}^\top x_{2i+1},$$
#
# with the same $W_1$ for every $i$: a 1-D **convolution** with kernel size 2,
# evaluated at every second position (stride 2). Level 2 combines $h_1[2i]$
# and $h_1[2i+1]$, which sit 2 characters apart in the input; level 3
# combines outputs 4 characters apart. A convolution whose two taps are $d$
# positions apart is a **dilated** convolution with dilation $d$.
#
# The hierarchy computes each level only where its tree needs it. A causal
# dilated convolution computes the same thing at **every** position $t$:
#
# $$y_t = b + \sum_{j=0}^{k-1} W_j^\top \, x_{t - (k-1-j)d}, \qquad W \in \mathbb R^{k \times C_\text{in} \times C_\text{out}},$$
#
# where "causal" means the output at $t$ reads only inputs at $t$ and before.
# At the start of the sequence the missing inputs are zeros: pad $(k-1)d$
# zeros **on the left only**. Symmetric padding, as `Conv1d(padding="same")`
# would do, lets position $t$ see the future, and a language model that sees
# the next character learns nothing useful.
#
# The tap order is the flattening order: $W_j$ is rows $jC_\text{in}$ to
# $(j+1)C_\text{in}-1$ of the hierarchy's Linear weight, so
# `conv.weight = linear.weight.view(k, C_in, C_out)`.
#
# Stacking convolutions with kernel 2 and dilations 1, 2, 4 gives every
# output at every position the same tree as the hierarchy's last output:
#
# $$\text{receptive field} = 1 + \sum_{\ell} (k_\ell - 1)\, d_\ell = 1 + 1 + 2 + 4 = 8 .$$
#
# Doubling the dilation at each layer makes the receptive field grow
# exponentially with depth, at a cost linear in depth: WaveNet's stack of
# dilations 1, 2, ..., 512 sees 1,024 samples back with ten layers.
#
# ## Exercise 6: `CausalConv1d`
#
# Write the causal dilated convolution for `(B, T, C_in)` inputs, with weight
# `(kernel_size, C_in, C_out)` drawn from $\mathcal N(0, 1/(k\,C_\text{in}))$.
# With `pad=True` (the default) it pads $(k-1)d$ zeros on the left and
# returns `(B, T, C_out)`. With `pad=False` it pads nothing and returns the
# $T - (k-1)d$ positions whose inputs all exist:
# $y_t = b + \sum_j W_j^\top x_{t + jd}$. Loops over the $k$ taps are fine
# (that is what a convolution is); `torch.nn.functional.conv1d` is not the
# point here.

# %% nbgrader={"grade": false, "grade_id": "CausalConv1d", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CausalConv1d(Module):
    """Causal dilated 1-D convolution over (B, T, in_channels) inputs.

    Attributes: weight float32 (kernel_size, in_channels, out_channels), drawn
    N(0, 1) with `generator` and divided by sqrt(kernel_size * in_channels);
    bias (out_channels,) zeros, or None if bias=False; kernel_size, dilation,
    pad. All parameters are leaves with requires_grad=True; parameters() is
    [weight] or [weight, bias].
    Output at t: bias + sum_j x[t - (kernel_size - 1 - j) * dilation] @ weight[j].
    pad=True: zeros stand for x before position 0; output (B, T, out_channels).
    pad=False: no zeros; output (B, T - (kernel_size - 1) * dilation, out_channels),
    its position 0 reading x[0], x[dilation], ..., x[(kernel_size - 1) * dilation].
    """

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, bias=True, pad=True, generator=None):
        ### BEGIN SOLUTION
        self.kernel_size, self.dilation, self.pad = kernel_size, dilation, pad
        fan_in = kernel_size * in_channels
        self.weight = (torch.randn(kernel_size, in_channels, out_channels, generator=generator)
                       / fan_in**0.5).requires_grad_()
        self.bias = torch.zeros(out_channels, requires_grad=True) if bias else None
        ### END SOLUTION

    def __call__(self, x):
        ### BEGIN SOLUTION
        span = (self.kernel_size - 1) * self.dilation  # how far back the first tap reaches
        if self.pad:
            x = F.pad(x, (0, 0, span, 0))  # (B, T, C): zeros before the first position only
        T_out = x.shape[1] - span
        out = sum(x[:, j * self.dilation: j * self.dilation + T_out] @ self.weight[j] for j in range(self.kernel_size))
        return out if self.bias is None else out + self.bias
        ### END SOLUTION

    def parameters(self):
        ### BEGIN SOLUTION
        return [self.weight] + ([] if self.bias is None else [self.bias])
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_CausalConv1d", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.CausalConv1d(CausalConv1d)
### BEGIN HIDDEN TESTS
check.CausalConv1d(CausalConv1d, seed=1609)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7: the receptive field of a stack
#
# How many input positions can one output of a stack of convolutions depend
# on? A layer with kernel $k$ and dilation $d$ reaches $(k-1)d$ positions
# further back than its input did.

# %% nbgrader={"grade": false, "grade_id": "receptive_field", "locked": false, "schema_version": 3, "solution": true, "task": false}
def receptive_field(kernel_sizes, dilations):
    """The receptive field (an int) of a stack of convolutions, layer l having
    kernel size kernel_sizes[l] and dilation dilations[l]; 1 for no layers."""
    ### BEGIN SOLUTION
    return 1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_receptive_field", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.receptive_field(receptive_field)
### BEGIN HIDDEN TESTS
check.receptive_field(receptive_field, seed=11)
### END HIDDEN TESTS

# %% [markdown]
# The picture: the inputs (bottom row) that the last output reads through
# each layer, for the hierarchy's dilations 1, 2, 4 and for plain
# convolutions (dilation 1 everywhere), which need seven layers for the same
# eight characters.

# %%
def draw_stack(ax, dilations, T=16, title=""):
    """Every position of every layer, with the connections that reach the last output in bold."""
    L = len(dilations)
    used = [set() for _ in range(L + 1)]
    used[L] = {T - 1}
    for level in range(L, 0, -1):
        d = dilations[level - 1]
        for t in used[level]:
            for s in (t - d, t):
                if s >= 0:
                    used[level - 1].add(s)
                    ax.plot([s, t], [level - 1, level], color="C3", lw=1.8, zorder=1)
    for level in range(L + 1):
        for t in range(T):
            ax.scatter(t, level, s=40, zorder=2, color="C3" if t in used[level] else "lightgray")
    ax.set_yticks(range(L + 1), ["input"] + [f"d={d}" for d in dilations])
    ax.set_xlabel("position")
    ax.set_title(f"{title}: receptive field {receptive_field([2] * L, dilations)}")


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [1, 1.3]})
draw_stack(ax1, [1, 2, 4], title="kernel 2, dilations 1, 2, 4")
draw_stack(ax2, [1] * 7, title="kernel 2, no dilation, 7 layers")
fig.tight_layout()
save_figure(fig, "05_receptive_field.png")
plt.show()

# %% [markdown]
# ## Exercise 8: the stack, with the hierarchy's weights
#
# Turn a trained hierarchy into a convolution stack that computes the same
# function at every position. Walk through `hierarchy.layers` and build:
#
# - the `Embedding`, with a copy of the table;
# - for each `FlattenConsecutive(n)` followed by its `Linear`: a
#   `CausalConv1d(C_in, C_out, kernel_size=n, dilation=d, bias=False,
#   pad=False)` with `weight = linear.weight.view(n, C_in, C_out)`, copied.
#   The dilation `d` is the product of the flatten factors *before* this one
#   (1 for the first level, 2 for the second, 4 for the third when all
#   factors are 2);
# - each `BatchNorm1d`, with copies of `gamma`, `beta`, `running_mean`,
#   `running_var`, and the same `eps` and `momentum`;
# - each `Tanh`, and the last `Linear`, with copies of its weight and bias.
#
# Copies (`.detach().clone()`, then `.requires_grad_()` for the parameters),
# so that training one model never changes the other. The result is a
# `Sequential` that takes `(B, T)` tokens, $T \ge$ `block_size`, and returns
# `(B, T - block_size + 1, V)` logits: the output at position $p$ is the
# hierarchy's prediction for the context `tokens[p : p + block_size]`.
#
# Why unpadded convolutions? The hierarchy pads the *tokens*: before a name
# starts, its context is `.` characters, not zero vectors. Feed the stack
# `block_size - 1` start tokens before a name and every position sees exactly
# the window the hierarchy would see. (The name starts with its own `.`, so
# that is `block_size` dots in all, the first window being only dots.)

# %% nbgrader={"grade": false, "grade_id": "hierarchy_to_conv", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hierarchy_to_conv(hierarchy):
    """A Sequential of Embedding, CausalConv1d(pad=False), BatchNorm1d, Tanh and
    Linear layers with copies of `hierarchy`'s weights and statistics (see
    above); it maps (B, T) tokens to (B, T - block_size + 1, vocab) logits."""
    ### BEGIN SOLUTION
    def copy(t):
        return t.detach().clone().requires_grad_(t.requires_grad)

    layers, dilation, n = [], 1, None
    for layer in hierarchy.layers:
        if isinstance(layer, Embedding):
            emb = Embedding(*layer.weight.shape)
            emb.weight = copy(layer.weight)
            layers.append(emb)
        elif isinstance(layer, FlattenConsecutive):
            n = layer.n
        elif isinstance(layer, Linear) and n is not None:  # the Linear after a flatten: a convolution
            C_in, C_out = layer.weight.shape[0] // n, layer.weight.shape[1]
            conv = CausalConv1d(C_in, C_out, n, dilation=dilation, bias=layer.bias is not None, pad=False)
            conv.weight = copy(layer.weight.view(n, C_in, C_out))
            if layer.bias is not None:
                conv.bias = copy(layer.bias)
            layers.append(conv)
            dilation, n = dilation * n, None
        elif isinstance(layer, Linear):
            out = Linear(*layer.weight.shape, bias=layer.bias is not None)
            out.weight = copy(layer.weight)
            if layer.bias is not None:
                out.bias = copy(layer.bias)
            layers.append(out)
        elif isinstance(layer, BatchNorm1d):
            bn = BatchNorm1d(len(layer.gamma), eps=layer.eps, momentum=layer.momentum)
            bn.gamma, bn.beta = copy(layer.gamma), copy(layer.beta)
            bn.running_mean, bn.running_var = layer.running_mean.clone(), layer.running_var.clone()
            layers.append(bn)
        elif isinstance(layer, Tanh):
            layers.append(Tanh())
    return Sequential(layers).train(hierarchy.training)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_hierarchy_to_conv", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.hierarchy_to_conv(hierarchy_to_conv, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh)
### BEGIN HIDDEN TESTS
check.hierarchy_to_conv(hierarchy_to_conv, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh,
                        seed=2016)
### END HIDDEN TESTS

# %% [markdown]
# ### The equivalence, measured
#
# Convert the trained hierarchy, feed validation names (with their start
# tokens) one at a time, and compare the logits with the hierarchy's at every
# position, in evaluation mode (both use the same running statistics).

# %%
def name_sequences(words, stoi, block_size):
    """For each name: int64 (block_size + L + 1,) tokens, block_size '.', the name, '.'.

    The stack reads all but the last token and predicts tokens[block_size:],
    one prediction per window of block_size tokens.
    """
    return [torch.tensor([0] * block_size + [stoi[c] for c in w] + [0]) for w in words]


conv = hierarchy_to_conv(hier).eval()
hier.eval()
worst, n_positions = 0.0, 0
with torch.no_grad():
    for seq in name_sequences(val_words[:100 if fast_mode() else 500], stoi, BLOCK_SIZE):
        tokens = seq[:-1]  # the name with its leading '.', after block_size - 1 more
        logits_conv = conv(tokens[None])[0]  # (L + 1, V): a prediction at every position
        windows = tokens.unfold(0, BLOCK_SIZE, 1)  # the hierarchy's contexts, one per position
        logits_hier = hier(windows)
        worst = max(worst, (logits_conv - logits_hier).abs().max().item())
        n_positions += len(windows)
    full = conv(Xva)  # (n, 1, V): with exactly block_size tokens the stack has one output position
    print(f"val loss: hierarchy {F.cross_entropy(hier(Xva), Yva).item():.6f}, "
          f"stack {F.cross_entropy(full[:, 0], Yva).item():.6f}")
hier.train()
print(f"largest |logit difference| over {n_positions} positions of validation names: {worst:.2e}")

# %% [markdown]
# The same numbers up to float32 rounding: the two models are one function.
# (In training mode they are not: the stack's BatchNorm takes its statistics
# over every position of a batch of names, the hierarchy's over the
# positions of its trees.)
#
# ### Training on every position at once
#
# The hierarchy sees one window per example. A name of 6 letters gives 7
# examples, and in the hierarchy the 7 windows are 7 separate forward passes
# that recompute the same pairs again and again: the pair "em" of "emma" is
# fused in three different windows. The stack computes every pair of a name
# once and reuses it for every window that contains it, and it predicts
# every position of the name in one pass.
#
# So train the stack on whole names. A batch is 32 random names, each
# preceded by eight `.` and followed by `.` up to the longest name of the
# batch; the targets after a name's end are set to -100, which
# `F.cross_entropy` ignores, so the loss is the mean over the real
# predictions only. The padding windows still enter BatchNorm's statistics
# (about a third of the positions): a small mismatch with evaluation, where
# the running statistics meet real windows only.
#
# A tempting alternative, batches of names that all have the same length,
# needs no padding at all, and fails instructively. In our run on
# `names.txt` (`extras/benchmarks/lesson05.md`) its batch loss fell to 1.82
# within a thousand steps while the validation loss *rose*, from 2.37 at step
# 500 to 2.81 at step 3,500. The batch statistics of 32 names of length $L$ depend on $L$
# (the share of windows made of start tokens, for one), so in training mode
# BatchNorm tells every position how long its name is, and the model learns
# to rely on it. In evaluation mode that information is gone. An example's
# prediction depending on its batch (lesson 03, Wu & Johnson 2021) is not
# only noise: it can be a leak.
#
# The model is a fresh hierarchy with the same seed as above, converted: the
# same initialisation. On a context of exactly eight tokens the stack returns
# one position, `(n, 1, V)`, so it is evaluated on the hierarchy's `Xva`
# windows as they are: the validation loss is computed on **the same
# examples** as the hierarchy's, and we plot it against training time.

# %%
def padded_names(words, stoi, block_size):
    """(X, Y, lengths): X int64 (n, block_size + Lmax), block_size '.', the name,
    then '.'; Y int64 (n, Lmax + 1), the targets of every window, -100 after the
    name's final '.'; lengths int64 (n,)."""
    Lmax = max(len(w) for w in words)
    X = torch.zeros(len(words), block_size + Lmax, dtype=torch.int64)
    Y = torch.full((len(words), Lmax + 1), -100, dtype=torch.int64)
    for i, w in enumerate(words):
        ids = [stoi[c] for c in w]
        X[i, block_size:block_size + len(w)] = torch.tensor(ids, dtype=torch.int64)
        Y[i, :len(w) + 1] = torch.tensor(ids + [0])
    return X, Y, torch.tensor([len(w) for w in words])


def name_batches(X, Y, lengths, block_size, names_per_batch=32):
    """Random names, cropped to the longest of the batch."""
    def batch(gen):
        ix = torch.randint(0, len(X), (names_per_batch,), generator=gen)
        L = lengths[ix].max().item()
        return X[ix, :block_size + L], Y[ix, :L + 1]

    return batch


Xn, Yn, lengths = padded_names(train_words, stoi, BLOCK_SIZE)
print("first training name:", "".join(itos[i] for i in Xn[0].tolist()), "->",
      " ".join(itos.get(i, "_") for i in Yn[0].tolist()), " (_: ignored)")

g = torch.Generator().manual_seed(2147483647)
build_hierarchy(V, BLOCK_SIZE, 10, 68, generator=g)  # the draws of `small`, so that the next one repeats `hier`
conv = hierarchy_to_conv(build_hierarchy(V, BLOCK_SIZE, 24, 128, generator=g))
CONV_STEPS = STEPS // 8  # about as many predictions as the hierarchy's STEPS batches of 32 windows
conv_losses, conv_log = train(conv, CONV_STEPS, name_batches(Xn, Yn, lengths, BLOCK_SIZE), evaluate=evaluate,
                              every=CONV_STEPS // EVALS)
print(f"stack, trained on all positions: val {conv_log[-1][2]:.4f} after {CONV_STEPS} steps of 32 names, "
      f"{conv_log[-1][1]:.1f} s of training")
print(f"hierarchy, trained on windows:   val {hier_log[-1][2]:.4f} after {STEPS} steps of 32 windows, "
      f"{hier_log[-1][1]:.1f} s of training")
if fast_mode():
    print(f"fast mode: {CONV_STEPS} steps of the stack instead of 2,500, too few for the comparison below; the "
          "full run ends at val 2.1234 for the stack after 2,500 steps (79.3 s of training), against 2.0556 for "
          "the hierarchy after 20,000 (167.5 s)")


def val_at(log, seconds):
    """A log's validation loss at a training time, linear between its evaluations (as the plot draws it)."""
    points = [(s, v) for _, s, v in log]
    for (s0, v0), (s1, v1) in zip(points, points[1:]):
        if s0 <= seconds <= s1:
            return v0 + (v1 - v0) * (seconds - s0) / (s1 - s0)
    return points[0][1] if seconds == points[0][0] else None


# Where both curves of the plot exist, compare them at the earliest common time: this run's measurement.
t = max(conv_log[0][1], hier_log[0][1])
if t <= min(conv_log[-1][1], hier_log[-1][1]):
    v_conv, v_hier = val_at(conv_log, t), val_at(hier_log, t)
    print(f"at equal training time, {t:.1f} s: val {v_conv:.4f} for the stack, {v_hier:.4f} for the hierarchy: "
          f"in this run the stack is {'ahead' if v_conv < v_hier else 'behind'} there")
else:
    print(f"the two validation curves do not overlap in time in this run (the stack's are from "
          f"{conv_log[0][1]:.1f} to {conv_log[-1][1]:.1f} s, the hierarchy's from {hier_log[0][1]:.1f} to "
          f"{hier_log[-1][1]:.1f} s): it does not compare them at equal training time")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.5))
for name, log in (("flat MLP (22k)", flat_log), ("hierarchy (22k)", small_log), ("hierarchy (77k)", hier_log),
                  ("conv stack (77k), all positions", conv_log)):
    ax1.plot([s for _, s, _ in log], [v for _, _, v in log], marker="o", label=name)
for name, losses in (("hierarchy (77k)", hier_losses), ("conv stack (77k), all positions", conv_losses)):
    k = max(1, len(losses) // 100)
    smooth = torch.tensor(losses[: len(losses) // k * k]).view(-1, k, 2).mean(1)  # (seconds, loss) means
    ax2.plot(smooth[:, 0], smooth[:, 1], label=name)
ax1.set_xlabel("training time (s)")
ax1.set_ylabel("validation loss (same examples)")
ax1.legend()
ax2.set_xlabel("training time (s)")
ax2.set_ylabel("training loss (batch mean, smoothed)")
ax2.legend()
fig.tight_layout()
save_figure(fig, "05_loss_curves.png")
plt.show()

# %% [markdown]
# What the full runs on `names.txt` say (`extras/benchmarks/lesson05.md`).
# Early on, the stack is ahead at equal training time (the line printed
# above the plot says whether this run's curves agree): each
# of its steps learns from every position of 32 names, about 230
# predictions, for the cost of three or four hierarchy steps. But it does
# **not** end ahead. Given about as many predictions as the hierarchy's
# 200,000 steps (25,000 steps, 5.7 million), it reaches 1.999 in half the
# CPU time, against the hierarchy's 1.984 (one seed each; other seeds move
# such figures by about ± 0.003). But the hierarchy given that same half
# (100,000 steps) reaches 1.980, level with its full run, and the stack
# given the hierarchy's whole budget (50,000 steps) overfits and ends at
# 2.027: its validation
# loss stops improving long before the end while its batch loss keeps
# falling.
#
# Why? The predictions of one name are not independent examples: they share
# its letters, so a batch of 230 of them carries far less than 230 separate
# windows, and the stack makes eight times fewer updates for the same
# number of predictions. Its cheap predictions buy more passes over the
# same 25,626 names (62 passes in the 50,000-step run), not more
# information, and nothing in this recipe regularises 76,579 parameters.
# BatchNorm adds a mismatch of its own: in training its statistics include
# padding positions, in evaluation they meet only real windows. Computing
# every position in one pass pays off when the data are plentiful, as in
# WaveNet's audio or in lesson 06's Shakespeare; on 26k short names the
# hierarchy's random windows are the better use of the same compute.
#
# ## Sampling
#
# Sampling from the stack is the same as from the hierarchy: keep the last
# eight tokens, predict, draw. (A WaveNet for audio caches each layer's past
# outputs so that generating one more sample costs one new column per layer;
# with eight characters there is nothing to gain.)

# %%
conv.eval()
g = torch.Generator().manual_seed(2147483647 + 10)
samples = []
with torch.no_grad():
    for _ in range(12):
        context, out = [0] * BLOCK_SIZE, []
        while True:
            probs = F.softmax(conv(torch.tensor([context]))[0, -1], dim=0)
            ix = torch.multinomial(probs, 1, generator=g).item()
            if ix == 0:
                break
            out.append(itos[ix])
            context = context[1:] + [ix]
        samples.append("".join(out))
print(", ".join(samples))

# %% [markdown]
# ## What to take away
#
# - A flat first layer reads every position of the context through its own
#   weights, and its cost and its burden grow with the context. A hierarchy
#   fuses neighbours level by level with weights shared across positions.
# - BatchNorm on `(B, T, C)` takes its statistics over `(0, 1)`: the same
#   feature at every position. Over dimension 0 alone it runs without error
#   and computes something else.
# - Evaluate (and sample) in evaluation mode; a training-mode evaluation
#   also rewrites the running statistics.
# - Shared weights across positions are a convolution. The hierarchy is a
#   stack of causal convolutions with kernel 2 and dilations 1, 2, 4,
#   evaluated only where its tree needs them; the receptive field is
#   $1 + \sum (k-1)d$. Left padding keeps it causal.
# - Run the stack at every position and one forward pass gives a prediction
#   for every character of a name. On 26k names that buys speed early but
#   not a better model: correlated predictions are not more data. The idea
#   returns in lesson 06's Transformer, trained on every position of a long
#   text, where every position attends to all earlier ones.
