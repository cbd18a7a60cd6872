# %% [markdown]
# # Lesson 04: backpropagation by hand
#
# Since lesson 01, one line has done all the calculus for us: `loss.backward()`.
# Autograd is exact and fast, so why give it up? Because backpropagation is a
# *leaky abstraction*: tanh units saturate and pass no gradient, a BatchNorm
# couples the examples of a batch, a wrong broadcast spreads a gradient where
# it does not belong, and none of this is visible until one knows what
# `backward()` computes. So in this lesson we write every gradient of the
# BatchNorm MLP of lesson 03 ourselves, tensor by tensor, and use autograd only
# as the referee.
#
# Backpropagation is reverse-mode automatic differentiation: the chain rule
# applied from the loss backwards, so that one sweep gives the derivative of
# one number (the loss) with respect to every parameter (Linnainmaa 1970;
# Rumelhart, Hinton & Williams 1986; Griewank & Walther, *Evaluating
# Derivatives*, 2008). The plan:
#
# 1. break the forward pass into **atoms**, each one a small tensor operation
#    whose derivative we can write down;
# 2. go backwards through them, from the loss to the embedding table: the 26
#    gradients of exercises 1-8;
# 3. collapse two long chains into one expression each: the cross-entropy
#    (exercise 9) and the BatchNorm layer (exercise 10);
# 4. train the network with our own gradients only (exercise 11) and reach the
#    loss autograd reaches.
#
# **How to work.** Fill in each function where it says `YOUR CODE HERE`, keep
# the signature, and run its check:
#
#     pytest checks/lesson04 -k backward_loss     # one exercise
#     pytest checks/lesson04                      # the whole lesson
#
# The cell after each exercise runs the same check. A failed check lists every
# gradient of the exercise with its largest difference from autograd and names
# the first wrong one: fix that one first, since the ones after it are
# computed from it.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from checks.lesson04 import exercises as check
from course.data import load_names, split
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small tensors: one thread is several times faster here

# %% [markdown]
# ## The data
#
# The names of lessons 01-03, cut into training examples as in lesson 02:
# each example is a context of `BLOCK_SIZE` = 3 characters and the character
# that follows. `.` pads the context at the start of a name and marks its end.
# This lesson builds its own examples so that it stands on its own.

# %%
DATA = "embedded"  # or "classic", or a path to a names.txt you have
BLOCK_SIZE = 3
BN_EPS = 1e-5

words = load_names(DATA)
train_words, val_words, test_words = split(words)
chars = sorted(set("".join(words)))
stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
itos = {i: c for c, i in stoi.items()}
VOCAB = len(stoi)
print(f"{len(words)} names, vocabulary of {VOCAB} tokens")


# %%
def build_dataset(words, stoi, block_size=BLOCK_SIZE):
    """Contexts and next characters: X int64 (N, block_size), Y int64 (N,)."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            X.append(context)
            Y.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return torch.tensor(X), torch.tensor(Y)


# %%
Xtr, Ytr = build_dataset(train_words, stoi)
Xval, Yval = build_dataset(val_words, stoi)
Xte, Yte = build_dataset(test_words, stoi)
print(f"examples: train {len(Xtr)}, val {len(Xval)}, test {len(Xte)}")

# %% [markdown]
# ## The network, and why none of its parameters starts at zero
#
# The network is the one of lesson 03: an embedding table $C$ (27 x 10), a
# linear layer to 64 hidden units, a BatchNorm layer with gain and bias,
# tanh, and a linear layer to 27 logits. With $T = 3$ characters of context,
# $E = 10$ and $H = 64$ it has 4,137 parameters.
#
# In lesson 03 some parameters started at exactly zero (`b2`) or one
# (`bngain`), and `b1` could be dropped because the BatchNorm that follows
# cancels it. For checking gradients that is a trap. If `bnbias` starts at 0
# then a wrong gradient multiplied by it is still 0, and if `bngain` is 1
# then forgetting to multiply by it changes nothing. So every parameter here
# gets small random values: a wrong backward cannot hide behind a zero or a
# one.

# %%
def init_params(vocab_size, n_embd, n_hidden, block_size, generator):
    """The MLP's parameters, every one of them non-zero (float32)."""
    g = generator
    fan_in = n_embd * block_size
    return {
        "C": torch.randn(vocab_size, n_embd, generator=g),
        "W1": torch.randn(fan_in, n_hidden, generator=g) * (5 / 3) / fan_in**0.5,  # Kaiming for tanh
        "b1": torch.randn(n_hidden, generator=g) * 0.1,  # useless after BatchNorm; kept to be checked
        "W2": torch.randn(n_hidden, vocab_size, generator=g) * 0.1,
        "b2": torch.randn(vocab_size, generator=g) * 0.1,
        "bngain": torch.randn(1, n_hidden, generator=g) * 0.1 + 1.0,
        "bnbias": torch.randn(1, n_hidden, generator=g) * 0.1,
    }


# %% [markdown]
# ## The forward pass, in atoms
#
# Here is the forward pass of lesson 03, written so that each line does one
# thing. For a batch of $n$ examples, with $V = 27$, $T = 3$, $E = 10$ and
# $H = 64$, the shapes are:
#
# | atom | shape | what it is |
# |---|---|---|
# | `emb = C[Xb]` | (n, T, E) | the embeddings of the context characters |
# | `embcat = emb.view(n, -1)` | (n, T·E) | the same numbers, one row per example |
# | `hprebn = embcat @ W1 + b1` | (n, H) | first linear layer |
# | `bnmeani = hprebn.sum(0, keepdim=True) / n` | (1, H) | batch mean |
# | `bndiff = hprebn - bnmeani` | (n, H) | deviations |
# | `bndiff2 = bndiff**2` | (n, H) | squared deviations |
# | `bnvar = bndiff2.sum(0, keepdim=True) / (n-1)` | (1, H) | batch variance, Bessel-corrected |
# | `bnvar_inv = (bnvar + eps)**-0.5` | (1, H) | inverse standard deviation |
# | `bnraw = bndiff * bnvar_inv` | (n, H) | normalised: mean 0, std 1 per unit |
# | `hpreact = bngain * bnraw + bnbias` | (n, H) | BatchNorm's gain and bias |
# | `h = tanh(hpreact)` | (n, H) | hidden layer |
# | `logits = h @ W2 + b2` | (n, V) | output layer |
# | `logit_maxes = logits.max(1, keepdim=True).values` | (n, 1) | row maxima |
# | `norm_logits = logits - logit_maxes` | (n, V) | shifted so that `exp` cannot overflow |
# | `counts = norm_logits.exp()` | (n, V) | unnormalised probabilities |
# | `counts_sum = counts.sum(1, keepdim=True)` | (n, 1) | row sums |
# | `counts_sum_inv = counts_sum**-1` | (n, 1) | their inverses |
# | `probs = counts * counts_sum_inv` | (n, V) | the softmax |
# | `logprobs = probs.log()` | (n, V) | |
# | `loss = -logprobs[range(n), Yb].mean()` | () | mean negative log-likelihood |
#
# The variance uses Bessel's correction, $\frac{1}{n-1}$, because it is an
# estimate of the variance of all examples from $n$ of them. PyTorch's
# `nn.BatchNorm1d` normalises with the biased $\frac{1}{n}$ variance instead
# (and stores the unbiased one in `running_var`); Ioffe & Szegedy (2015) left
# the choice open, and Wu & Johnson (2021) discuss this and other train/test
# inconsistencies of BatchNorm. For batches of 32 the two differ by 3 %. Here
# the point is that **the backward pass must use the same formula as the
# forward pass**: the checks catch a $\frac{1}{n}$ in the backward of a
# $\frac{1}{n-1}$ forward.

# %%
def forward(params, Xb, Yb, eps=BN_EPS):
    """The forward pass in atoms. Returns a dict: every intermediate by name, and 'loss'."""
    p, n = params, Xb.shape[0]
    emb = p["C"][Xb]
    embcat = emb.view(n, -1)
    hprebn = embcat @ p["W1"] + p["b1"]
    bnmeani = hprebn.sum(0, keepdim=True) / n
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = bndiff2.sum(0, keepdim=True) / (n - 1)  # Bessel's correction
    bnvar_inv = (bnvar + eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = p["bngain"] * bnraw + p["bnbias"]
    h = torch.tanh(hpreact)
    logits = h @ p["W2"] + p["b2"]
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdim=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[torch.arange(n), Yb].mean()
    return dict(emb=emb, embcat=embcat, hprebn=hprebn, bnmeani=bnmeani, bndiff=bndiff, bndiff2=bndiff2,
                bnvar=bnvar, bnvar_inv=bnvar_inv, bnraw=bnraw, hpreact=hpreact, h=h, logits=logits,
                logit_maxes=logit_maxes, norm_logits=norm_logits, counts=counts, counts_sum=counts_sum,
                counts_sum_inv=counts_sum_inv, probs=probs, logprobs=logprobs, loss=loss)


# %% [markdown]
# The referee: the same forward pass with autograd, keeping the gradient of
# every intermediate (`retain_grad`), in the order backprop reaches them.

# %%
GRADIENTS = ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes",
             "logits", "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2",
             "bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1", "emb", "C"]


def autograd_gradients(params, Xb, Yb):
    """Autograd's gradient of the loss with respect to the 26 tensors, by name."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    cache = forward(leaves, Xb, Yb)
    for k, v in cache.items():
        v.retain_grad()
    cache["loss"].backward()
    everything = {**leaves, **cache}
    return {k: everything[k].grad for k in GRADIENTS}


# %%
g = torch.Generator().manual_seed(2147483647)
params = init_params(VOCAB, n_embd=10, n_hidden=64, block_size=BLOCK_SIZE, generator=g)
print(f"{sum(p.numel() for p in params.values())} parameters")
ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
Xb, Yb = Xtr[ix], Ytr[ix]  # one fixed batch for the whole backward pass
cache = forward(params, Xb, Yb)
reference = autograd_gradients(params, Xb, Yb)
print(f"loss on the batch: {cache['loss'].item():.4f}  (ln {VOCAB} = {math.log(VOCAB):.4f})")

# %% [markdown]
# ## Three rules for the whole backward pass
#
# We write $\bar{x}$ for $\partial \mathcal{L} / \partial x$, the gradient of
# the loss with respect to tensor $x$, and `dx` in code. In every exercise,
# the gradients of the atoms *after* $x$ are known, and one needs
# $\bar{x}$.
#
# **1. Chain rule, element by element.** If $y = f(x)$ is an atom, then
# $\bar{x}_i = \sum_j \bar{y}_j \, \partial y_j / \partial x_i$. For an
# element-wise $f$ only $j = i$ survives: $\bar{x} = f'(x) \odot \bar{y}$.
# So each atom needs one local derivative, and the rest is bookkeeping.
#
# **2. A tensor used twice gets both gradients, added.** If $x$ feeds $y$ and
# $z$, the loss changes through both paths:
# $\bar{x} = \bar{y}\,\partial y/\partial x + \bar{z}\,\partial z/\partial x$.
# `counts`, `logits`, `bndiff` and `hprebn` are each used twice.
#
# **3. A broadcast in the forward pass is a sum in the backward pass, and a
# sum is a broadcast.** In `probs = counts * counts_sum_inv` the (n, 1)
# column `counts_sum_inv` is copied over the $V$ columns. Each copy sends a
# gradient back to the same number, so these add: writing $p$, $c$ and $r$
# for `probs`, `counts` and `counts_sum_inv`,
# $\bar{r}_i = \sum_j \bar{p}_{ij}\, c_{ij}$, a sum over the dimension that
# was broadcast. The other way round, `counts_sum = counts.sum(1,
# keepdim=True)` has the local derivative 1 for every term, so each element
# of row $i$ of `counts` receives the same $\overline{\text{counts\_sum}}_i$:
# the gradient is broadcast back.
#
# From rule 3 follows a **shape discipline**: $\bar{x}$ always has exactly the
# shape of $x$. A (1, H) parameter has a (1, H) gradient (sum over dim 0 with
# `keepdim=True`); a (V,) bias has a (V,) gradient (sum without keepdim). The
# shapes also tell you how to write the matrix products. For
# `logits = h @ W2`, (n, V) = (n, H) @ (H, V), the only products of
# $\overline{\text{logits}}$ (n, V) with the other factor that give the right
# shapes are
#
# $$\bar{h} = \overline{\text{logits}}\; W_2^\top \quad (n, H), \qquad
#   \bar{W_2} = h^\top\, \overline{\text{logits}} \quad (H, V),$$
#
# and writing out $\text{logits}_{ij} = \sum_k h_{ik} W_{kj}$ confirms them:
# $\partial \text{logits}_{ij} / \partial h_{ik} = W_{kj}$, summed over $j$.
#
# Shapes matter for checking too. PyTorch compares with broadcasting, so a
# (1, 27) tensor "equals" a (27,) one, and a gradient of the wrong shape
# would pass a careless check:

# %%
print("allclose((1, 27), (27,)) =", torch.allclose(torch.ones(1, 27), torch.ones(27)))
print("and their difference has shape", tuple((torch.ones(1, 27) - torch.ones(27)).shape))

# %% [markdown]
# The checks of this lesson compare shapes before values, and compare the
# values with a tolerance scaled to each gradient's size, so that correct
# float32 code passes whatever the CPU and torch version.
#
# ## Exercise 1: from the loss to `counts_sum`
#
# **`logprobs`.** $\mathcal{L} = -\frac{1}{n}\sum_i \text{logprobs}_{i, y_i}$
# uses one element per row, the target's. So
# $\overline{\text{logprobs}}_{ij} = -\frac{1}{n}$ if $j = y_i$ and $0$
# otherwise. It has the shape of `logprobs`, (n, V).
#
# **`probs`.** $\frac{d}{dp}\log p = \frac{1}{p}$, so
# $\overline{\text{probs}} = \overline{\text{logprobs}} / \text{probs}$.
# (A small probability for the target means a large gradient: the net is
# pushed hardest where it is most wrong.)
#
# **`counts_sum_inv`.** In `probs = counts * counts_sum_inv` the local
# derivative with respect to `counts_sum_inv` is `counts`, and
# `counts_sum_inv` (n, 1) was broadcast over the columns: sum over dim 1,
# keeping the dimension.
#
# **`counts_sum`.** $\frac{d}{ds} s^{-1} = -s^{-2}$.

# %% nbgrader={"grade": false, "grade_id": "backward_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_loss(Yb, probs, counts, counts_sum):
    """Gradients of the loss with respect to logprobs, probs, counts_sum_inv, counts_sum.

    Args:
        Yb: int64 (n,) targets; probs, counts: (n, V); counts_sum: (n, 1).
    Returns:
        (dlogprobs, dprobs, dcounts_sum_inv, dcounts_sum), shaped (n, V), (n, V),
        (n, 1), (n, 1): each gradient has the shape of its tensor.
    """
    ### BEGIN SOLUTION
    n = Yb.shape[0]
    dlogprobs = torch.zeros_like(probs)
    dlogprobs[torch.arange(n), Yb] = -1.0 / n
    dprobs = dlogprobs / probs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts_sum = -(counts_sum**-2) * dcounts_sum_inv
    return dlogprobs, dprobs, dcounts_sum_inv, dcounts_sum
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.backward_loss(backward_loss)
### BEGIN HIDDEN TESTS
check.backward_loss(backward_loss, seed=41)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: through the softmax, to `logits`
#
# **`counts`** is used twice (rule 2). Through `probs = counts *
# counts_sum_inv` it gets $\text{counts\_sum\_inv} \odot
# \overline{\text{probs}}$; through `counts_sum = counts.sum(1, keepdim=True)`
# it gets $\overline{\text{counts\_sum}}$ broadcast over the row (rule 3).
# Add the two.
#
# **`norm_logits`.** $\frac{d}{dx} e^x = e^x$, which we already have: it is
# `counts`.
#
# **`logit_maxes`.** `norm_logits = logits - logit_maxes` broadcasts the
# (n, 1) maxima over the columns with the local derivative $-1$, so
# $\overline{\text{logit\_maxes}} = -\sum_j \overline{\text{norm\_logits}}_{ij}$
# (keepdim). For our loss this is about zero: subtracting a constant from a
# row of logits does not change the softmax, which is exactly why we may
# subtract the maximum for numerical safety. Compute it anyway. Your function
# must be right for *any* upstream gradients, and the check also runs it on
# a loss that uses `counts_sum` a second time, where it is not zero.
#
# **`logits`** is used twice: directly in `norm_logits` (local derivative 1)
# and through the maximum. The maximum of a row depends only on its largest
# element, with derivative 1, so that element also receives
# $\overline{\text{logit\_maxes}}_i$: a one-hot of the row's argmax times the
# (n, 1) column. `F.one_hot(logits.max(1).indices, num_classes=V)` builds the
# one-hot. Return new tensors: if `dlogits` is `dnorm_logits` itself, adding
# to it in place also changes `dnorm_logits`.

# %% nbgrader={"grade": false, "grade_id": "backward_softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_softmax(logits, counts, counts_sum_inv, dprobs, dcounts_sum):
    """Gradients with respect to counts, norm_logits, logit_maxes, logits.

    Args:
        logits, counts: (n, V); counts_sum_inv: (n, 1);
        dprobs: (n, V) gradient of the loss w.r.t. probs;
        dcounts_sum: (n, 1) gradient of the loss w.r.t. counts_sum.
        They may come from any loss, not only the cross-entropy.
    Returns:
        (dcounts, dnorm_logits, dlogit_maxes, dlogits), shaped (n, V), (n, V), (n, 1), (n, V).
    """
    ### BEGIN SOLUTION
    dcounts = counts_sum_inv * dprobs + dcounts_sum  # two uses of counts; dcounts_sum broadcast over the row
    dnorm_logits = counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)
    dlogits = dnorm_logits + F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    return dcounts, dnorm_logits, dlogit_maxes, dlogits
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_softmax", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.backward_softmax(backward_softmax)
### BEGIN HIDDEN TESTS
check.backward_softmax(backward_softmax, seed=42)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: the output layer and tanh
#
# `logits = h @ W2 + b2` is a matrix product plus a broadcast bias. The
# three rules give, with the shapes as a guide:
#
# - $\bar{h} = \overline{\text{logits}}\, W_2^\top$, (n, V) @ (V, H) = (n, H);
# - $\bar{W_2} = h^\top\, \overline{\text{logits}}$, (H, n) @ (n, V) = (H, V);
# - $\bar{b_2} = \sum_i \overline{\text{logits}}_{i\cdot}$: `b2` (V,) was
#   broadcast over the n rows, so sum over dim 0, and no keepdim, since `b2`
#   has shape (V,), not (1, V).
#
# For `h = tanh(hpreact)`: $\frac{d}{dx}\tanh x = 1 - \tanh^2 x$, and
# $\tanh x$ is `h`, already computed. Note what this means: a unit with
# $|h| \approx 1$ (saturated) passes almost no gradient back. Lesson 03's
# saturation plots were about this factor.

# %% nbgrader={"grade": false, "grade_id": "backward_output_layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_output_layer(h, W2, dlogits):
    """Gradients with respect to h, W2, b2 and hpreact (through h = tanh(hpreact)).

    Args:
        h: (n, H); W2: (H, V); dlogits: (n, V).
    Returns:
        (dh, dW2, db2, dhpreact), shaped (n, H), (H, V), (V,), (n, H).
    """
    ### BEGIN SOLUTION
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    return dh, dW2, db2, dhpreact
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_output_layer", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.backward_output_layer(backward_output_layer)
### BEGIN HIDDEN TESTS
check.backward_output_layer(backward_output_layer, seed=43)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: BatchNorm's gain and bias, and the normalisation
#
# `hpreact = bngain * bnraw + bnbias` with `bngain` and `bnbias` of shape
# (1, H), broadcast over the batch:
#
# - $\overline{\text{bngain}} = \sum_i \text{bnraw}_{i\cdot} \odot
#   \overline{\text{hpreact}}_{i\cdot}$, with keepdim: shape (1, H);
# - $\overline{\text{bnbias}} = \sum_i \overline{\text{hpreact}}_{i\cdot}$,
#   (1, H);
# - $\overline{\text{bnraw}} = \text{bngain} \odot \overline{\text{hpreact}}$,
#   (n, H): here `bngain` is the one broadcast, and `bnraw` is full size, so
#   nothing is summed.
#
# `bnraw = bndiff * bnvar_inv` is the same pattern once more: `bnvar_inv`
# (1, H) was broadcast, so $\overline{\text{bnvar\_inv}} = \sum_i
# \text{bndiff}_{i\cdot} \odot \overline{\text{bnraw}}_{i\cdot}$ (keepdim).
# The other half, $\overline{\text{bndiff}}$, waits for exercise 5, because
# `bndiff` is also used in `bndiff2`.

# %% nbgrader={"grade": false, "grade_id": "backward_bn_affine", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_bn_affine(bnraw, bngain, bndiff, dhpreact):
    """Gradients with respect to bngain, bnbias, bnraw and bnvar_inv.

    Args:
        bnraw, bndiff, dhpreact: (n, H); bngain: (1, H).
    Returns:
        (dbngain, dbnbias, dbnraw, dbnvar_inv), shaped (1, H), (1, H), (n, H), (1, H).
    """
    ### BEGIN SOLUTION
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    return dbngain, dbnbias, dbnraw, dbnvar_inv
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_bn_affine", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.backward_bn_affine(backward_bn_affine)
### BEGIN HIDDEN TESTS
check.backward_bn_affine(backward_bn_affine, seed=44)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 5: BatchNorm's statistics, down to `hprebn`
#
# Backwards through the batch statistics, one atom at a time:
#
# - `bnvar_inv = (bnvar + eps)**-0.5`: the local derivative is
#   $-\frac{1}{2}(\text{bnvar} + \epsilon)^{-3/2}$.
# - `bnvar = bndiff2.sum(0, keepdim=True) / (n - 1)`: a sum is a broadcast
#   backwards, so every element of `bndiff2` receives
#   $\frac{1}{n-1}\overline{\text{bnvar}}$, a (1, H) row broadcast to (n, H).
#   Keep the $\frac{1}{n-1}$ of the forward pass: a $\frac{1}{n}$ here is the
#   classic mix-up between the unbiased and the biased variance.
# - `bndiff` is used twice: in `bnraw` (giving
#   $\text{bnvar\_inv} \odot \overline{\text{bnraw}}$) and in `bndiff2`
#   (giving $2\,\text{bndiff} \odot \overline{\text{bndiff2}}$). Add them.
# - `bndiff = hprebn - bnmeani` broadcasts `bnmeani` (1, H) with local
#   derivative $-1$: $\overline{\text{bnmeani}} = -\sum_i
#   \overline{\text{bndiff}}_{i\cdot}$ (keepdim).
# - `hprebn` is used twice: in `bndiff` (derivative 1) and in
#   `bnmeani = hprebn.sum(0, keepdim=True) / n`, whose backward broadcasts
#   $\frac{1}{n}\overline{\text{bnmeani}}$ to every row.

# %% nbgrader={"grade": false, "grade_id": "backward_bn_stats", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_bn_stats(bndiff, bnvar, bnvar_inv, dbnraw, dbnvar_inv, eps=BN_EPS):
    """Gradients with respect to bnvar, bndiff2, bndiff, bnmeani and hprebn.

    Args:
        bndiff, dbnraw: (n, H); bnvar, bnvar_inv, dbnvar_inv: (1, H); eps: BatchNorm's epsilon.
    Returns:
        (dbnvar, dbndiff2, dbndiff, dbnmeani, dhprebn), shaped (1, H), (n, H), (n, H), (1, H), (n, H).
    """
    ### BEGIN SOLUTION
    n = bndiff.shape[0]
    dbnvar = -0.5 * (bnvar + eps) ** -1.5 * dbnvar_inv
    dbndiff2 = torch.ones_like(bndiff) * dbnvar / (n - 1)
    dbndiff = bnvar_inv * dbnraw + 2 * bndiff * dbndiff2
    dbnmeani = -dbndiff.sum(0, keepdim=True)
    dhprebn = dbndiff + dbnmeani / n
    return dbnvar, dbndiff2, dbndiff, dbnmeani, dhprebn
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_bn_stats", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.backward_bn_stats(backward_bn_stats)
### BEGIN HIDDEN TESTS
check.backward_bn_stats(backward_bn_stats, seed=45)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6: the first layer
#
# `hprebn = embcat @ W1 + b1` is exercise 3's pattern again:
# $\overline{\text{embcat}} = \overline{\text{hprebn}}\,W_1^\top$ (n, T·E),
# $\bar{W_1} = \text{embcat}^\top\,\overline{\text{hprebn}}$ (T·E, H), and
# $\bar{b_1} = \sum_i \overline{\text{hprebn}}_{i\cdot}$ (H,).
#
# In this network $\bar{b_1}$ is about zero: BatchNorm subtracts the batch
# mean, so adding a constant to every row of `hprebn` changes nothing after
# it, and the gradients of `hprebn` sum to zero over the batch. (This is why
# a bias before a BatchNorm is useless.) Compute it all the same: without
# BatchNorm it would be the whole gradient of `b1`, and the check also feeds
# your function a `dhprebn` whose batch sum is not zero.
#
# `embcat = emb.view(n, -1)` moves no number, it only changes the shape. Its
# backward is the reverse view: `dembcat.view(emb.shape)`.

# %% nbgrader={"grade": false, "grade_id": "backward_first_layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_first_layer(emb, embcat, W1, dhprebn):
    """Gradients with respect to embcat, W1, b1 and emb.

    Args:
        emb: (n, T, E); embcat: (n, T*E); W1: (T*E, H); dhprebn: (n, H), from any loss.
    Returns:
        (dembcat, dW1, db1, demb), shaped (n, T*E), (T*E, H), (H,), (n, T, E).
    """
    ### BEGIN SOLUTION
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    return dembcat, dW1, db1, demb
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_first_layer", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.backward_first_layer(backward_first_layer)
### BEGIN HIDDEN TESTS
check.backward_first_layer(backward_first_layer, seed=46)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7: the embedding table
#
# `emb = C[Xb]` copies row `Xb[i, t]` of `C` into `emb[i, t]`. Copying is a
# broadcast of sorts: a row of `C` picked $k$ times in the batch receives the
# sum of the $k$ gradients, and a row never picked receives zero. So start
# from zeros of the shape of `C` and add `demb[i, t]` into row `Xb[i, t]`, for
# every $i$ and $t$.
#
# A double loop does it and is easy to get right. It is also slow, so try a
# vectorised version too: `index_add_` along dim 0 with the flattened indices,
# or a one-hot matrix (n·T, V) transposed and multiplied by `demb` flattened to
# (n·T, E), or the same with `torch.einsum`. Note that
# `dC[Xb] += demb` is **wrong**: with repeated indices only one of the
# additions survives.

# %% nbgrader={"grade": false, "grade_id": "backward_embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_embedding(C, Xb, demb):
    """Gradient with respect to the embedding table C.

    Args:
        C: (V, E); Xb: int64 (n, T); demb: (n, T, E).
    Returns:
        dC, shaped (V, E).
    """
    ### BEGIN SOLUTION
    dC = torch.zeros_like(C)
    dC.index_add_(0, Xb.reshape(-1), demb.reshape(-1, C.shape[1]))
    return dC
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_embedding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.backward_embedding(backward_embedding)
### BEGIN HIDDEN TESTS
check.backward_embedding(backward_embedding, seed=47)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 8: the whole chain
#
# Put the seven steps together: take the parameters and the forward pass's
# intermediates (the dict `forward` returns) and return all 26 gradients,
# keyed by the tensor's name (`"logprobs"`, ..., `"C"`, without the `d`).
# Each step takes the gradients the previous steps computed.

# %% nbgrader={"grade": false, "grade_id": "backward_all", "locked": false, "schema_version": 3, "solution": true, "task": false}
def backward_all(params, cache, Xb, Yb):
    """The 26 gradients of the loss, from your exercises 1-7.

    Args:
        params: dict C, W1, b1, W2, b2, bngain, bnbias; cache: the dict of
        forward(); Xb: int64 (n, T); Yb: int64 (n,).
    Returns:
        dict from each of the 26 names in GRADIENTS to its gradient (same shape as the tensor).
    """
    ### BEGIN SOLUTION
    p, c = params, cache
    d = {}
    d["logprobs"], d["probs"], d["counts_sum_inv"], d["counts_sum"] = backward_loss(
        Yb, c["probs"], c["counts"], c["counts_sum"])
    d["counts"], d["norm_logits"], d["logit_maxes"], d["logits"] = backward_softmax(
        c["logits"], c["counts"], c["counts_sum_inv"], d["probs"], d["counts_sum"])
    d["h"], d["W2"], d["b2"], d["hpreact"] = backward_output_layer(c["h"], p["W2"], d["logits"])
    d["bngain"], d["bnbias"], d["bnraw"], d["bnvar_inv"] = backward_bn_affine(
        c["bnraw"], p["bngain"], c["bndiff"], d["hpreact"])
    d["bnvar"], d["bndiff2"], d["bndiff"], d["bnmeani"], d["hprebn"] = backward_bn_stats(
        c["bndiff"], c["bnvar"], c["bnvar_inv"], d["bnraw"], d["bnvar_inv"])
    d["embcat"], d["W1"], d["b1"], d["emb"] = backward_first_layer(c["emb"], c["embcat"], p["W1"], d["hprebn"])
    d["C"] = backward_embedding(p["C"], Xb, d["emb"])
    return d
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_backward_all", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.backward_all(backward_all, backward_loss, backward_softmax, backward_output_layer, backward_bn_affine,
                   backward_bn_stats, backward_first_layer, backward_embedding)

# %% [markdown]
# On our batch, your 26 gradients next to autograd's, in backprop order. The
# relative difference is the largest difference divided by the largest
# gradient value, so float32 rounding shows as about 1e-7. (For `logit_maxes`
# and `b1`, whose true gradients are about zero, it is measured against
# `norm_logits` and `hprebn`.)

# %%
grads = backward_all(params, cache, Xb, Yb)
print(check.gradient_table(grads, reference))

# %% [markdown]
# ## Exercise 9: the cross-entropy backward in one expression
#
# Eight atoms from `logits` to the loss is a long way round: the softmax and
# the negative log-likelihood together have a short derivative. For one row,
# with $p = \mathrm{softmax}(l)$ and target $y$,
# $\ell = -\log p_y = -l_y + \log \sum_k e^{l_k}$, so
#
# $$\frac{\partial \ell}{\partial l_j} = -[j = y] + \frac{e^{l_j}}{\sum_k e^{l_k}}
#   = p_j - [j = y].$$
#
# The loss is the mean over $n$ rows, hence
# $\overline{\text{logits}} = (\mathrm{softmax}(\text{logits}) -
# \mathrm{onehot}(Y)) / n$. Each row sums to zero: the gradient pulls the
# target's logit up by exactly as much as it pushes the others down, each in
# proportion to its probability. Use `F.softmax` (it subtracts the maximum
# itself) and write the rest.

# %% nbgrader={"grade": false, "grade_id": "cross_entropy_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cross_entropy_backward(logits, Yb):
    """Gradient of F.cross_entropy(logits, Yb) (mean over the batch) w.r.t. logits.

    Args:
        logits: (n, V) float; Yb: int64 (n,).
    Returns:
        dlogits, shaped (n, V).
    """
    ### BEGIN SOLUTION
    n = logits.shape[0]
    dlogits = F.softmax(logits, dim=1)
    dlogits[torch.arange(n), Yb] -= 1.0
    return dlogits / n
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_cross_entropy_backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.cross_entropy_backward(cross_entropy_backward)
### BEGIN HIDDEN TESTS
check.cross_entropy_backward(cross_entropy_backward, seed=49)
### END HIDDEN TESTS

# %% [markdown]
# The picture of $\overline{\text{logits}}$ for our batch: one dark cell per
# row at the target (the pull), light cells elsewhere (the push), scaled by
# $n$ so that the colours read as probabilities.

# %%
dlogits = cross_entropy_backward(cache["logits"], Yb)
print(f"largest difference from autograd: {(dlogits - reference['logits']).abs().max():.2e}")
fig, ax = plt.subplots(figsize=(7, 6))
im = ax.imshow((dlogits * Xb.shape[0]).numpy(), cmap="RdBu", vmin=-1, vmax=1)
ax.set_xticks(range(VOCAB), [itos[i] for i in range(VOCAB)])
ax.set_xlabel("next character")
ax.set_ylabel("example in the batch")
ax.set_title("n · dlogits = softmax - onehot(target)")
fig.colorbar(im, ax=ax)
save_figure(fig, "04_dlogits.png")
plt.show()

# %% [markdown]
# ## Exercise 10: the BatchNorm backward in one expression
#
# The same for BatchNorm, from $\overline{\text{hpreact}}$ to
# $\overline{\text{hprebn}}$, one hidden unit (one column) at a time. Write
# $x_i$ for the inputs of the batch, $\mu = \frac{1}{n}\sum_i x_i$,
# $v = \frac{1}{n-1}\sum_i (x_i - \mu)^2$, $s = (v + \epsilon)^{-1/2}$,
# $\hat{x}_i = (x_i - \mu)\,s$ and $y_i = \gamma \hat{x}_i + \beta$. Every
# $\hat{x}_i$ depends on every $x_j$, through $\mu$ and $v$:
#
# - $\partial (x_i - \mu) / \partial x_j = [i = j] - \frac{1}{n}$;
# - $\partial v / \partial x_j = \frac{2}{n-1}\sum_i (x_i - \mu)([i = j] -
#   \frac{1}{n}) = \frac{2}{n-1}(x_j - \mu)$, because the deviations sum to
#   zero;
# - $\partial s / \partial x_j = -\frac{1}{2}(v+\epsilon)^{-3/2}\,
#   \frac{2}{n-1}(x_j - \mu) = -\frac{s^3}{n-1}(x_j - \mu)$.
#
# Together, $\partial \hat{x}_i / \partial x_j = s\left([i=j] - \frac{1}{n} -
# \frac{\hat{x}_i \hat{x}_j}{n-1}\right)$, and with $\bar{\hat{x}}_i = \gamma
# \bar{y}_i$, summing over $i$:
#
# $$\bar{x}_j = \frac{\gamma s}{n}\left(n\,\bar{y}_j - \sum_i \bar{y}_i -
#   \frac{n}{n-1}\,\hat{x}_j \sum_i \bar{y}_i \hat{x}_i\right).$$
#
# Read it as: the upstream gradient, minus its batch mean (the mean was
# subtracted in the forward pass), minus its component along $\hat{x}$ (the
# scale was divided out), all times $\gamma s$. Write it for all columns at
# once. Recompute $\hat{x}$ and $s$ from `hprebn`, with the same Bessel
# correction as the forward pass.

# %% nbgrader={"grade": false, "grade_id": "batchnorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batchnorm_backward(hprebn, bngain, dhpreact, eps=BN_EPS):
    """Gradient w.r.t. hprebn of hpreact = bngain * (hprebn - mean) / sqrt(var + eps) + bnbias,
    with the batch mean and the Bessel-corrected batch variance of each column.

    Args:
        hprebn, dhpreact: (n, H); bngain: (1, H); dhpreact may come from any loss.
    Returns:
        dhprebn, shaped (n, H).
    """
    ### BEGIN SOLUTION
    n = hprebn.shape[0]
    bndiff = hprebn - hprebn.mean(0, keepdim=True)
    bnvar_inv = (bndiff.pow(2).sum(0, keepdim=True) / (n - 1) + eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    return bngain * bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0, keepdim=True) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0, keepdim=True))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_batchnorm_backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.batchnorm_backward(batchnorm_backward)
### BEGIN HIDDEN TESTS
check.batchnorm_backward(batchnorm_backward, seed=50)
### END HIDDEN TESTS

# %%
dhprebn = batchnorm_backward(cache["hprebn"], params["bngain"], reference["hpreact"])
print(f"largest difference from autograd: {(dhprebn - reference['hprebn']).abs().max():.2e}")

# %% [markdown]
# ## Exercise 11: training without autograd
#
# Now one training step uses only your gradients: run `forward`, compute the
# gradients of the seven parameters with `cross_entropy_backward`,
# `backward_output_layer`, the gain and bias gradients of exercise 4,
# `batchnorm_backward`, `backward_first_layer` and `backward_embedding`, and
# update every parameter in place: $p \leftarrow p - \eta\,\bar{p}$. The
# parameters do not even require gradients; the check runs your step under
# `torch.no_grad()` and follows autograd's SGD step by step.

# %% nbgrader={"grade": false, "grade_id": "train_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_step(params, Xb, Yb, lr):
    """One SGD step with manual gradients; updates the tensors of `params` in place.

    Args:
        params: dict C, W1, b1, W2, b2, bngain, bnbias (no requires_grad);
        Xb: int64 (n, T); Yb: int64 (n,); lr: learning rate.
    Returns:
        The loss before the update, as a Python float.
    """
    ### BEGIN SOLUTION
    p = params
    c = forward(p, Xb, Yb)
    grads = {}
    dlogits = cross_entropy_backward(c["logits"], Yb)
    _, grads["W2"], grads["b2"], dhpreact = backward_output_layer(c["h"], p["W2"], dlogits)
    grads["bngain"] = (c["bnraw"] * dhpreact).sum(0, keepdim=True)
    grads["bnbias"] = dhpreact.sum(0, keepdim=True)
    dhprebn = batchnorm_backward(c["hprebn"], p["bngain"], dhpreact)
    _, grads["W1"], grads["b1"], demb = backward_first_layer(c["emb"], c["embcat"], p["W1"], dhprebn)
    grads["C"] = backward_embedding(p["C"], Xb, demb)
    for k, grad in grads.items():
        p[k] -= lr * grad
    return c["loss"].item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.train_step(train_step, cross_entropy_backward, backward_output_layer, batchnorm_backward,
                 backward_first_layer, backward_embedding)

# %% [markdown]
# ## Training
#
# The network of lesson 03 with 200 hidden units, batches of 32, learning
# rate 0.1 and then 0.01 for the second half, 200,000 steps: 1.5 to 4 minutes
# on one CPU core, depending on the processor (81 s of CPU per run on an Intel
# Xeon; 238 s of CPU and 12.6 minutes of wall time on an AMD EPYC that four
# other jobs shared, `extras/benchmarks/lesson04.md`).
# Fast mode (`COURSE_FAST=1`, as under the tests) runs 1,000 steps. Nothing
# below calls `backward()`. The published run of this
# network with autograd reaches train 2.07 / val 2.11 on the classic
# names.txt; ours should land there too.

# %%
steps = 1_000 if fast_mode() else 200_000
g = torch.Generator().manual_seed(2147483647)
params = init_params(VOCAB, n_embd=10, n_hidden=200, block_size=BLOCK_SIZE, generator=g)
losses = []
with torch.no_grad():
    for i in progress(range(steps), desc="manual backprop"):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        losses.append(train_step(params, Xtr[ix], Ytr[ix], lr=0.1 if i < steps // 2 else 0.01))
print(f"{steps} steps, last batch loss {losses[-1]:.4f}")
if fast_mode():
    print("fast mode: 1,000 of 200,000 steps, so this loss, the curve below, the losses after it and the samples "
          "are far from the full run's; the evaluation below quotes what the full run of this loop reaches")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
window = max(1, steps // 200)
smooth = torch.tensor(losses[: len(losses) // window * window]).view(-1, window).mean(1)
ax.plot(torch.arange(len(smooth)) * window, smooth)
ax.set_xlabel("step")
ax.set_ylabel(f"training loss (mean over {window} steps)")
ax.set_title("training with manual gradients only")
save_figure(fig, "04_training.png")
plt.show()

# %% [markdown]
# ## Evaluation with population statistics
#
# At test time a BatchNorm layer must not use the statistics of the batch
# (lesson 03): one example would then depend on the others it happens to be
# batched with. After training we compute the mean and variance of `hprebn`
# over the whole training set once, and evaluate with those.

# %%
def population_stats(params, X):
    """Mean and (Bessel-corrected) variance of hprebn over all of X: two (1, H) tensors."""
    with torch.no_grad():
        hprebn = params["C"][X].view(X.shape[0], -1) @ params["W1"] + params["b1"]
        return hprebn.mean(0, keepdim=True), hprebn.var(0, keepdim=True)


def evaluate(params, X, Y, bnmean, bnvar, eps=BN_EPS):
    """Mean cross-entropy on (X, Y) with BatchNorm in inference mode (given statistics)."""
    with torch.no_grad():
        hprebn = params["C"][X].view(X.shape[0], -1) @ params["W1"] + params["b1"]
        hpreact = params["bngain"] * (hprebn - bnmean) * (bnvar + eps) ** -0.5 + params["bnbias"]
        logits = torch.tanh(hpreact) @ params["W2"] + params["b2"]
        return F.cross_entropy(logits, Y).item()


# %%
bnmean, bnvar = population_stats(params, Xtr)
train_loss = evaluate(params, Xtr, Ytr, bnmean, bnvar)
val_loss = evaluate(params, Xval, Yval, bnmean, bnvar)
print(f"manual backprop, {steps} steps: train {train_loss:.4f}  val {val_loss:.4f}")
print("measured with this loop over three seeds (extras/benchmarks/lesson04.md): classic names.txt train "
      "about 2.073 / val about 2.113, embedded names train about 2.073 / val about 2.124 (each ± 0.003)")

# %%
def sample(params, bnmean, bnvar, itos, generator, block_size=BLOCK_SIZE, eps=BN_EPS):
    """One name from the trained network (BatchNorm in inference mode)."""
    out, context = [], [0] * block_size
    with torch.no_grad():
        while True:
            X = torch.tensor([context])
            hprebn = params["C"][X].view(1, -1) @ params["W1"] + params["b1"]
            hpreact = params["bngain"] * (hprebn - bnmean) * (bnvar + eps) ** -0.5 + params["bnbias"]
            probs = F.softmax(torch.tanh(hpreact) @ params["W2"] + params["b2"], dim=1)
            ix = torch.multinomial(probs, 1, generator=generator).item()
            if ix == 0:
                return "".join(out)
            out.append(itos[ix])
            context = context[1:] + [ix]


# %%
g = torch.Generator().manual_seed(2147483647 + 10)
print(", ".join(sample(params, bnmean, bnvar, itos, g) for _ in range(12)))

# %% [markdown]
# ## What to take away
#
# - Backprop is the chain rule applied atom by atom from the loss backwards.
#   Each atom needs one local derivative; the gradient of a tensor used twice
#   is the sum of both contributions.
# - A broadcast in the forward pass is a sum in the backward pass, and a sum
#   is a broadcast. Every gradient has the shape of its tensor, and the
#   shapes tell you which matrix to transpose.
# - Long chains collapse into short formulas: softmax plus cross-entropy
#   gives $(p - \mathrm{onehot}(y))/n$; BatchNorm gives "remove the mean and
#   the component along $\hat{x}$, scale by $\gamma s$".
# - Checking gradients means comparing shapes first and values with a
#   tolerance that fits their size, on inputs where a wrong answer cannot
#   hide: nothing initialised to zero, square sizes where a transpose would
#   keep its shape, and a second loss for the gradients that happen to be
#   zero in the first.
#
# Next, lesson 05 stacks these layers into a deeper, WaveNet-like hierarchy,
# and goes back to autograd with a clear conscience.
