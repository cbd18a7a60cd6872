# %% [markdown]
# # Lesson 02: a neural n-gram model (Bengio et al. 2003)
#
# The bigram model of lesson 01 sees one character of context. To predict
# better we want to see more of the name, say the last three characters.
# This lesson builds the model of
#
# > Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, *A Neural Probabilistic
# > Language Model*, Journal of Machine Learning Research 3 (2003) 1137-1155.
#
# Bengio et al. worked with words. We apply the same model to characters:
#
# 1. each token gets a learned vector, its **embedding**;
# 2. the embeddings of the last $n$ tokens are concatenated;
# 3. a hidden layer with a $\tanh$ non-linearity reads them;
# 4. an output layer gives one **logit** per token of the vocabulary, and a
#    softmax turns the logits into the distribution of the next token.
#
# On the way we meet the tools every later lesson uses: mini-batch SGD,
# choosing a learning rate, and train/validation/test splits to see
# under- and over-fitting.
#
# **How to work.** Fill in each function where it says `YOUR CODE HERE`, keep
# the signature, and run its check after each exercise:
#
#     pytest checks/lesson02 -k build_dataset     # one exercise
#     pytest checks/lesson02                      # the whole lesson
#
# The cell after each exercise runs the same check in the notebook.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from checks.lesson02 import exercises as check
from course.data import load_names, split
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small tensors: one thread is several times faster here

BLOCK_SIZE = 3  # characters of context

# %% [markdown]
# ## The data
#
# The same names, split and vocabulary as in lesson 01: 80 % of the names for
# training, 10 % for validation, 10 % for test, cut once with a fixed seed.
# `.` (index 0) marks the start and the end of a name.

# %%
DATA = "embedded"  # or "classic", or a path to a names.txt you have
words = load_names(DATA)
train_words, val_words, test_words = split(words)
chars = sorted(set("".join(words)))
stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
itos = {i: c for c, i in stoi.items()}
V = len(stoi)
print(f"{len(words)} names; train {len(train_words)}, val {len(val_words)}, test {len(test_words)}; V = {V}")

# %% [markdown]
# ## Exercise 1: the (context, next character) examples
#
# The model reads a window of the last `block_size` tokens and predicts the
# next one. A name gives one example per character and one for its end.
# Before the first letter the window is padded with `.`, so the model also
# learns how names begin. With `block_size = 3`, "emma" gives 5 examples:
#
# | context | next |
# |---|---|
# | `. . .` | `e` |
# | `. . e` | `m` |
# | `. e m` | `m` |
# | `e m m` | `a` |
# | `m m a` | `.` |
#
# The window slides by one token per example: drop its oldest token and
# append the example's target, the token that came next. Return the contexts as the rows of `X`
# and the next tokens as `Y`, in the order of the words and of their
# characters.

# %% nbgrader={"grade": false, "grade_id": "build_dataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_dataset(words, stoi, block_size=3):
    """All (context, next token) examples of `words`.

    Args:
        words: list of names; stoi: dict with stoi['.'] == 0; block_size: context length.
    Returns:
        (X, Y): X is a torch.int64 tensor of shape (n, block_size), one context
        per row, oldest token first; Y is torch.int64 of shape (n,), the token
        that follows each context. n = sum of (len(w) + 1) over the words.
    """
    ### BEGIN SOLUTION
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.int64).view(-1, block_size), torch.tensor(Y, dtype=torch.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_build_dataset", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.build_dataset(build_dataset)
### BEGIN HIDDEN TESTS
check.build_dataset(build_dataset, seed=20171)
### END HIDDEN TESTS

# %%
Xtr, Ytr = build_dataset(train_words, stoi, BLOCK_SIZE)
Xval, Yval = build_dataset(val_words, stoi, BLOCK_SIZE)
Xte, Yte = build_dataset(test_words, stoi, BLOCK_SIZE)
print(f"examples: train {len(Ytr):,}  val {len(Yval):,}  test {len(Yte):,}")
for x, y in zip(Xtr[:6], Ytr[:6]):
    print("".join(itos[int(i)] for i in x), "->", itos[int(y)])

# %% [markdown]
# ## Why not count again? The curse of dimensionality
#
# Lesson 01's count table had one row per context: $V = 27$ rows. With $n$
# characters of context it needs $V^n$ rows of $V$ counts: 19,683 rows for
# $n = 3$ and $2.8 \times 10^{11}$ for $n = 8$. The data do not grow with
# it. Bengio et al. make this point for words: with a vocabulary of 100,000
# words, a 10-word context has $10^{50}$ possible values, so most contexts
# met at test time were never seen in training. A count model knows nothing
# about an unseen context, even when a very similar one was seen many times.
# Smoothing only gives it a near-uniform row. This is the *curse of
# dimensionality*: the volume of the space grows exponentially with the
# number of variables, while the data stay the same.
#
# We can watch it happen on our names. For each context length $n$ we count
# how many validation examples have a context that never occurred in
# training. We also measure the validation NLL of the add-$k$ count model
# of lesson 01 extended to $n$ characters of context:
#
# $$P(y \mid c) = \frac{N(c, y) + k}{N(c) + kV},$$
#
# where $N(c, y)$ counts context $c$ followed by $y$ in the training names
# and $N(c)$ counts $c$. The table is never built: we look up only the
# counts we need, and $k$ is the best of three values on validation.
# (Choosing $k$ on the validation set flatters the count model a little;
# we come back to this below.)

# %%
def context_ids(X, V):
    """Each context (a row of X) as one integer in [0, V**block_size)."""
    powers = V ** torch.arange(X.shape[1] - 1, -1, -1)
    return (X * powers).sum(dim=1)


def train_counts(keys_train, keys_eval):
    """How often each of keys_eval occurs in keys_train (both int64 tensors)."""
    uniq, inv = torch.unique(torch.cat([keys_train, keys_eval]), return_inverse=True)
    counts = torch.bincount(inv[: len(keys_train)], minlength=len(uniq))
    return counts[inv[len(keys_train):]]


def count_model_nll(Xa, Ya, Xb, Yb, V, k):
    """Validation NLL on (Xb, Yb) of the add-k count model fit on (Xa, Ya)."""
    ca, cb = context_ids(Xa, V), context_ids(Xb, V)
    n_pair = train_counts(ca * V + Ya, cb * V + Yb)
    n_ctx = train_counts(ca, cb)
    return -((n_pair + k) / (n_ctx + k * V)).log().mean().item()


# The last n columns of the 8-character windows are the n-character windows.
X8, Ya = build_dataset(train_words, stoi, 8)
X8val, Yb = build_dataset(val_words, stoi, 8)
curse = []
for n in range(1, 9):
    Xa, Xb = X8[:, 8 - n:], X8val[:, 8 - n:]
    unseen = (train_counts(context_ids(Xa, V), context_ids(Xb, V)) == 0).float().mean().item()
    best = min((count_model_nll(Xa, Ya, Xb, Yb, V, k), k) for k in (0.01, 0.1, 1.0))
    curse.append((n, unseen, *best))
    print(f"n={n}: {V ** n:>15,} possible contexts; unseen in validation {unseen:6.1%}; "
          f"count model val NLL {best[0]:.4f} (k={best[1]})")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot([c[0] for c in curse], [100 * c[1] for c in curse], "o-")
ax1.set_xlabel("context length n")
ax1.set_ylabel("% of validation contexts unseen")
ax2.plot([c[0] for c in curse], [c[2] for c in curse], "o-")
ax2.set_xlabel("context length n")
ax2.set_ylabel("count model: validation NLL")
fig.suptitle("the curse of dimensionality on names")
save_figure(fig, "02_mlp_curse.png")
plt.show()

# %% [markdown]
# Up to about three characters, more context helps the count model: most
# contexts that matter were seen often enough. With three characters, 27
# tokens and tens of thousands of names, the table is still small enough to
# fill, and smoothed counts make a strong baseline. Beyond that, the share
# of unseen contexts climbs fast and the validation NLL gets *worse* with
# more context, although more context can only help an ideal model. The
# count model cannot use what it saw in *similar* contexts. Classic n-gram
# models soften this with *back-off* and *interpolation*: when a long
# context is rare, they fall back on its shorter suffixes (Katz 1987;
# Kneser and Ney 1995). That helps, but the table still only knows exact
# matches. Bengio et al. compared their model with such smoothed n-gram
# models on word corpora.
#
# ## Learned embeddings
#
# Bengio et al.'s answer: give each token $i$ a vector $C_i \in
# \mathbb{R}^d$, the rows of a matrix $C$ of shape $(V, d)$, and learn $C$
# together with the rest of the network. Tokens that behave alike (say the
# vowels) get nearby vectors, because that helps the loss. A context is then a
# point in a continuous space. A context never seen in training lands near
# contexts that were seen, and the network gives it a similar prediction.
# This is how the model *generalises*. The number of parameters grows
# linearly with the context length ($n \cdot d$ inputs to the hidden layer),
# not exponentially.
#
# ## Exercise 2: embedding lookup and flatten
#
# Looking up the embedding of token $i$ is indexing: `C[i]`. PyTorch indexes
# with a whole tensor at once: for `X` of shape $(n, b)$, `C[X]` has shape
# $(n, b, d)$. (It is the same as `F.one_hot(X, V).float() @ C`, a
# multiplication by one-hot vectors, but without building them.) The hidden
# layer wants one vector per example, so concatenate the $b$ embeddings of
# a context, oldest first, into a vector of length $b \cdot d$.
#
# `tensor.view(n, -1)` does this without copying: a tensor is stored as one
# flat array, and the $b \cdot d$ numbers of an example are already next to
# each other, in the right order.

# %% nbgrader={"grade": false, "grade_id": "embed", "locked": false, "schema_version": 3, "solution": true, "task": false}
def embed(C, X):
    """The concatenated embeddings of each context.

    Args:
        C: (V, d) float tensor of embeddings; X: (n, b) int64 tensor of contexts.
    Returns:
        (n, b * d) float tensor; row t is C[X[t, 0]], C[X[t, 1]], ..., C[X[t, b-1]]
        one after the other.
    """
    ### BEGIN SOLUTION
    return C[X].view(X.shape[0], -1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_embed", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.embed(embed)

# %% [markdown]
# ## Exercise 3: the forward pass
#
# With the flattened embeddings $e \in \mathbb{R}^{b d}$ of a context, the
# network computes
#
# $$h = \tanh(e W_1 + b_1), \qquad \text{logits} = h W_2 + b_2,$$
#
# with $W_1$ of shape $(b d, H)$, $b_1$ of shape $(H,)$, $W_2$ of shape
# $(H, V)$ and $b_2$ of shape $(V,)$. $H$ is the number of hidden units.
# The logits are unnormalised log-probabilities: the softmax of a row is the
# model's distribution of the next token. (Bengio et al.'s model also has
# optional direct connections from the embeddings to the output. We leave
# them out.)
#
# Work on a whole batch at once: `X` holds $n$ contexts and the result has
# one row of logits per context. Return the logits, not probabilities: the
# loss function takes logits (see exercise 4).

# %% nbgrader={"grade": false, "grade_id": "forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def forward(X, C, W1, b1, W2, b2):
    """Logits of the next token for each context in X.

    Args:
        X: (n, b) int64 contexts; C: (V, d); W1: (b * d, H); b1: (H,); W2: (H, V); b2: (V,).
    Returns:
        (n, V) float tensor of logits, differentiable with respect to all parameters.
    """
    ### BEGIN SOLUTION
    emb = embed(C, X)  # (n, b*d)
    h = torch.tanh(emb @ W1 + b1)  # (n, H)
    return h @ W2 + b2  # (n, V)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_forward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.forward(forward, embed)
### BEGIN HIDDEN TESTS
check.forward(forward, embed, seed=20171)
### END HIDDEN TESTS

# %% [markdown]
# The parameters: $V \times d$ for $C$, $(b d + 1) H$ for the hidden layer
# and $(H + 1) V$ for the output layer. With $d = 10$ and $H = 200$ that is
# 11,897 numbers. We draw them all from a standard normal distribution, as
# the reference run of this lesson does. Lesson 03 shows why that is a poor
# choice and fixes it.

# %%
def init_params(V, n_embd=10, n_hidden=200, block_size=3, generator=None):
    """[C, W1, b1, W2, b2], standard normal, each requiring grad."""
    shapes = [(V, n_embd), (block_size * n_embd, n_hidden), (n_hidden,), (n_hidden, V), (V,)]
    params = [torch.randn(s, generator=generator) for s in shapes]
    for p in params:
        p.requires_grad = True
    return params


g = torch.Generator().manual_seed(2147483647)
params = init_params(V, generator=g)
print("parameters:", sum(p.nelement() for p in params))
logits = forward(Xtr[:5], *params)
print("logits of 5 contexts:", tuple(logits.shape))

# %% [markdown]
# ## Exercise 4: cross-entropy by hand
#
# The loss is the same average negative log-likelihood as in lesson 01. For
# example $t$ with logits $z_t$ and target $y_t$:
#
# $$\ell_t = -\ln \frac{e^{z_{t,y_t}}}{\sum_j e^{z_{t,j}}}
#          = -z_{t,y_t} + \ln \sum_j e^{z_{t,j}}, \qquad
#   \mathcal{L} = \frac{1}{n}\sum_t \ell_t.$$
#
# This is called the *cross-entropy* between the one-hot target and the
# model's distribution. Computing it literally (exponentiate, normalise,
# take the log) breaks for large logits. In float32, $e^{89}$ is already
# `inf`, and `inf / inf` is `nan`. Very negative logits fail the other way:
# every $e^{z}$ underflows to 0 and we get $\ln 0 = -\infty$.
#
# The fix is the *log-sum-exp trick*. For any constant $m$,
#
# $$\ln \sum_j e^{z_j} = m + \ln \sum_j e^{z_j - m}.$$
#
# With $m = \max_j z_j$ the largest exponent is $e^0 = 1$: nothing overflows,
# and the sum is at least 1, so its log is finite.
#
# Write `cross_entropy(logits, Y)` this way, with `max`, `exp`, `sum`, `log`
# and indexing, **without** `F.cross_entropy`, `softmax`, `log_softmax` or
# `logsumexp` (the check refuses them). The result must match
# `F.cross_entropy(logits, Y)` even for logits in the thousands. Take the
# maximum with `.detach()` or not, as you like: the result does not
# depend on $m$, so neither does its gradient.

# %% nbgrader={"grade": false, "grade_id": "cross_entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cross_entropy(logits, Y):
    """Mean cross-entropy of integer targets under softmax(logits), numerically stable.

    Args:
        logits: (n, V) float tensor; Y: (n,) int64 targets in [0, V).
    Returns:
        0-dim tensor, differentiable with respect to logits; equal to F.cross_entropy(logits, Y).
    """
    ### BEGIN SOLUTION
    m = logits.max(dim=1, keepdim=True).values.detach()  # (n, 1)
    shifted = logits - m
    log_norm = shifted.exp().sum(dim=1).log()  # (n,): ln sum_j exp(z_j - m)
    return (log_norm - shifted[torch.arange(len(Y)), Y]).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_cross_entropy", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.cross_entropy(cross_entropy)
### BEGIN HIDDEN TESTS
check.cross_entropy(cross_entropy, seed=20171)
### END HIDDEN TESTS

# %% [markdown]
# The naive version next to yours and PyTorch's, on one row of large logits:

# %%
big = torch.tensor([[100.0, 0.0, -100.0]])
target = torch.tensor([0])
naive = -(big.exp() / big.exp().sum(dim=1, keepdim=True))[0, 0].log()
print(f"naive: {naive.item()}   by hand, stable: {cross_entropy(big, target).item():.6f}"
      f"   F.cross_entropy: {F.cross_entropy(big, target).item():.6f}")

# %% [markdown]
# From now on we use `F.cross_entropy`. It computes the same value with the
# same trick (a stable `log_softmax`, then picking the targets), so it is
# just as safe. It is also faster and leaner. Our version runs half a dozen
# operations and autograd stores their intermediate $(n, V)$ tensors for the
# backward pass. PyTorch's runs two dedicated kernels, stores one tensor,
# and computes the gradient from its short exact form,
# $\partial \ell_t / \partial z_{t,j} = (p_{t,j} - [j = y_t])/n$, where
# $p_t = \operatorname{softmax}(z_t)$ (lesson 04 derives it).
#
# ## Exercise 5: one step of mini-batch SGD
#
# The training set has about 170,000 examples. A gradient over all of them
# is exact but costs a full pass for each step. *Mini-batch* SGD estimates
# the gradient on a small random batch (32 examples here) instead. Each
# estimate is noisy, but a step costs about 1/5,000 of a full pass, so we
# can take many more steps. Noisy steps in roughly the right direction beat
# a few exact ones.
#
# `sgd_step` does one step on a batch that it receives: reset the gradients,
# compute the loss (use your `forward` and `F.cross_entropy`), backpropagate,
# and move every parameter against its gradient,
# $\theta \leftarrow \theta - \eta \nabla_\theta \mathcal{L}$, in place and
# without autograd recording the update.

# %% nbgrader={"grade": false, "grade_id": "sgd_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sgd_step(params, X, Y, lr):
    """One SGD step on the batch (X, Y), updating params in place.

    Args:
        params: list [C, W1, b1, W2, b2] of leaf tensors with requires_grad=True;
        X: (n, b) int64 contexts; Y: (n,) int64 targets; lr: learning rate.
    Returns:
        The batch loss before the update, as a Python float.
    """
    ### BEGIN SOLUTION
    for p in params:
        p.grad = None
    loss = F.cross_entropy(forward(X, *params), Y)
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sgd_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.sgd_step(sgd_step, forward, embed)

# %% [markdown]
# Two helpers for the rest of the lesson: a training loop that draws the
# batches from a generator (so a run can be repeated exactly), and the loss
# on a whole split, computed without building a graph.

# %%
def train(params, X, Y, steps, lr, batch_size=32, generator=None, desc="training"):
    """`steps` SGD steps on random batches of (X, Y); lr(i) gives the rate of step i."""
    losses = []
    for i in progress(range(steps), desc=desc):
        ix = torch.randint(0, X.shape[0], (batch_size,), generator=generator)
        losses.append(sgd_step(params, X[ix], Y[ix], lr(i)))
    return losses


@torch.no_grad()
def split_loss(params, X, Y):
    return F.cross_entropy(forward(X, *params), Y).item()


# %% [markdown]
# ## Choosing the learning rate
#
# Too small a learning rate and the loss barely moves. Too large and it
# jumps around or diverges. To find a good range, *sweep* it: train a fresh
# model (same seed, same batches) for a short while at each of a dozen
# rates, spaced evenly on a log scale from $10^{-3}$ to $10^{0}$, and plot
# the validation loss reached against $\log_{10}$ of the rate. A short run
# finds the right order of magnitude, not the exact best value: the best
# rate for a long run is often a bit smaller.
#
# (A cheaper variant takes one step at each rate on a *single* run, the
# rate growing at every step. It is quicker, but it mixes the effect of the
# rate with the progress already made.)

# %%
sweep_steps = 100 if fast_mode() else 2_000
sweep_exponents = torch.linspace(-3, 0, 13).tolist()
sweep = []
for e in progress(sweep_exponents, desc="lr sweep"):
    g = torch.Generator().manual_seed(2147483647)
    params = init_params(V, generator=g)
    train(params, Xtr, Ytr, sweep_steps, lambda i: 10**e, generator=g, desc=f"lr 1e{e:.2f}")
    sweep.append(split_loss(params, Xval, Yval))
    print(f"lr = 10^{e:5.2f} = {10**e:.4f}: val loss after {sweep_steps} steps {sweep[-1]:.3f}")
if fast_mode():
    print("fast mode: 100 steps per rate instead of 2,000, so the losses differ from the full sweep's, "
          "which is best at 10^-0.75 (val 2.958), then 0.1 (3.134), then 10^-0.5 (3.690)")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(sweep_exponents, [min(v, 30) for v in sweep], "o-")
ax.set_xlabel("log10 learning rate")
ax.set_ylabel(f"validation loss after {sweep_steps} steps")
ax.set_title("learning-rate sweep")
save_figure(fig, "02_mlp_lr_sweep.png")
plt.show()

# %% [markdown]
# In the full sweep (2,000 steps per rate) the loss is lowest at
# $10^{-0.75} \approx 0.18$, with $0.1$ close behind. From about $0.3$ on
# it gets worse quickly: the steps overshoot. We train with 0.1, a safe
# margin below where training breaks down, and divide it by 10 for the
# second half of training (*learning-rate decay*): small steps at the end
# let the parameters settle closer to a minimum instead of bouncing around
# it.
#
# ## Training
#
# The reference run: $d = 10$, $H = 200$, batch 32, 200,000 steps, learning
# rate 0.1, then 0.01 after 100,000 steps. In our runs (three seeds each,
# see `extras/benchmarks/lesson02.md`) it reaches a validation loss of about
# 2.16 on the classic names.txt and about 2.18 on the embedded names (each
# ± 0.01 over the seeds), well below the bigram's 2.45. Your figure will
# differ in the third decimal: another seed moves it that much, and so does
# another CPU (the same seed ends 0.006 apart on two processors, which round
# float32 differently). It takes a few minutes on a CPU. Fast mode (under the tests
# and the grader) runs 2,000 steps, far too few to train the model: it says
# so when it runs, and quotes the full run's figures.

# %%
steps = 2_000 if fast_mode() else 200_000
g = torch.Generator().manual_seed(2147483647)
params = init_params(V, generator=g)
losses = train(params, Xtr, Ytr, steps, lambda i: 0.1 if i < steps // 2 else 0.01, generator=g)
train_loss, val_loss = split_loss(params, Xtr, Ytr), split_loss(params, Xval, Yval)
print(f"after {steps} steps: train {train_loss:.4f}  val {val_loss:.4f}")
print(f"count model with 3 characters of context: val {curse[2][2]:.4f} (k={curse[2][3]})")
if fast_mode():
    print("fast mode: 2,000 of 200,000 steps, so this model is far from trained and the loss curve shows "
          "no clear drop at the halfway mark; the full run on the embedded names reaches train about 2.12, "
          "val about 2.18 (names.txt: val about 2.16; three seeds), and its validation loss falls by about 0.2 "
          "after the rate drops")

# %%
bucket = max(steps // 200, 1)
curve = torch.tensor(losses).log10()[: len(losses) // bucket * bucket].view(-1, bucket).mean(dim=1)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(torch.arange(len(curve)) * bucket, curve)
ax.axvline(steps // 2, color="gray", ls=":", label="lr 0.1 -> 0.01")
ax.set_xlabel("step")
ax.set_ylabel(f"log10 batch loss (mean of {bucket} steps)")
ax.legend()
save_figure(fig, "02_mlp_training.png")
plt.show()

# %% [markdown]
# The first steps bring the loss down from about 26: the normal initial
# weights make the first predictions confidently wrong (lesson 03). In the
# full run the loss drops at the halfway mark, where the learning rate
# decays.
#
# How does the network compare with counting? Honestly: at three characters
# of context it does not beat a well-smoothed count table. On the classic
# names.txt the full run reaches a validation loss of about 2.16, while the
# count model with 3 characters reaches 2.102 (with $k$ tuned on
# validation). Both use the same context. The table has
# $27^3 \times 27 = 531{,}441$ entries, most of them zero, against the
# network's 11,897 parameters. The network's strength is that it keeps
# improving with more context, where the table gets worse: with 8
# characters the count model falls to 2.54, while a network with 8
# characters reaches a published 1.99 (lesson 05). Lesson 03 also shows that
# this network is held back by its initialisation.
#
# ## Train, validation, test; under- and over-fitting
#
# A model with enough parameters can memorise its training data. So the
# training loss says little about how well the model does on new names.
# That is why we split the names three ways:
#
# - **train** (80 %): the gradient steps use only these;
# - **validation** (10 %): to compare choices such as the learning rate, $d$,
#   $H$ or the number of steps;
# - **test** (10 %): evaluated once, at the very end. Every choice made by
#   looking at the validation loss fits the model a little to the validation
#   names, so their loss becomes optimistic. The test loss stays honest
#   only if nothing was chosen by it.
#
# When train and validation losses are close, the model is
# **under-fitting**: it does no better on the names it trained on than on
# new ones, so it has capacity to spare, and a larger model or longer
# training should lower both. Our model is in that regime: its gap is a
# few hundredths. When the training loss keeps falling while the validation
# loss rises, the model is **over-fitting**: it learns the training names
# by heart instead of patterns that carry over.
#
# Over-fitting is easy to provoke: train the same network on 500 names
# only, and measure both losses as training goes on. (We start it from
# smaller initial weights, which makes the effect show sooner; lesson 03
# explains why they help.)

# %%
few = train_words[:500]
Xfew, Yfew = build_dataset(few, stoi, BLOCK_SIZE)
g = torch.Generator().manual_seed(2147483647)
small_params = init_params(V, generator=g)
with torch.no_grad():
    for p, scale in zip(small_params[1:], (0.2, 0.01, 0.01, 0.0)):  # W1, b1, W2, b2
        p *= scale
rounds, per_round = (20, 250) if fast_mode() else (40, 250)  # 5,000 steps already show it
history = []
for r in range(rounds):
    train(small_params, Xfew, Yfew, per_round, lambda i: 0.1, generator=g, desc="500 names")
    history.append((split_loss(small_params, Xfew, Yfew), split_loss(small_params, Xval, Yval)))
xs = [(r + 1) * per_round for r in range(rounds)]
best = min(range(rounds), key=lambda r: history[r][1])
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(xs, [t for t, _ in history], label=f"train ({len(Yfew)} examples)")
ax.plot(xs, [v for _, v in history], label="validation")
ax.plot(xs[best], history[best][1], "k*", ms=12, label="best validation loss")
ax.axhline(val_loss, color="gray", ls=":", label=f"validation, trained on all names ({steps:,} steps)")
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.set_ylim(bottom=0)
ax.legend()
ax.set_title("over-fitting: 11,897 parameters, 500 names")
save_figure(fig, "02_mlp_overfitting.png")
plt.show()
print(f"500 names: best val {history[best][1]:.3f} after {xs[best]} steps; "
      f"after {xs[-1]} steps train {history[-1][0]:.3f}  val {history[-1][1]:.3f}")
if fast_mode():
    print("fast mode: 5,000 of 10,000 steps; in the full run the validation loss climbs to 3.422 by step 10,000 "
          "while the training loss falls to 1.379")

# %% [markdown]
# On the embedded names the validation loss is best after about 1,500
# steps (about 2.51). It is back up to 2.84 after 5,000 steps (where fast
# mode stops) and climbs past 3.4 by 10,000, while the training loss keeps
# falling, to 1.6 after 5,000 steps and about 1.4 after 10,000: far below
# anything the model trained on all names reaches. From the best point on, every step makes the model better at
# *these* 500 names and worse at names in general. More data, a smaller
# model, a weight penalty (lesson 01) or stopping at the best validation
# loss (*early stopping*) all fight over-fitting.
#
# Now, once, the test loss of the model trained on all names:

# %%
test_loss = split_loss(params, Xte, Yte)
print(f"train {train_loss:.4f}  val {val_loss:.4f}  test {test_loss:.4f}")

# %% [markdown]
# ## What the embeddings learned
#
# With $d = 10$ we cannot look at the embeddings directly. So we train a
# second model with $d = 2$ and plot each token at its vector. Tokens that
# the network treats alike end up close together.

# %%
steps_2d = 2_000 if fast_mode() else 50_000
g = torch.Generator().manual_seed(2147483647)
params_2d = init_params(V, n_embd=2, n_hidden=100, generator=g)
train(params_2d, Xtr, Ytr, steps_2d, lambda i: 0.1 if i < steps_2d * 3 // 4 else 0.01, generator=g, desc="2-D")
print(f"d = 2: train {split_loss(params_2d, Xtr, Ytr):.4f}  val {split_loss(params_2d, Xval, Yval):.4f}")
if fast_mode():
    print("fast mode: 2,000 of 50,000 steps, so these losses (and which of d = 2 and d = 10 is ahead) and the "
          "picture below differ from the full runs: val about 2.34 with d = 2, against about 2.18 with d = 10")

C2 = params_2d[0].detach()
# Most letters crowd together: the right panel zooms into the box around the middle 70 % of them.
lo, hi = C2.quantile(0.15, dim=0), C2.quantile(0.85, dim=0)
lo, hi = lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo)
inside = ((C2 >= lo) & (C2 <= hi)).all(dim=1)
fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(11, 5.5))
for ax, labelled in ((ax_all, ~inside), (ax_zoom, inside)):
    ax.scatter(C2[:, 0], C2[:, 1], s=15, c="steelblue")
    for i in labelled.nonzero().flatten().tolist():
        ax.annotate(itos[i], C2[i].tolist(), xytext=(3, 3), textcoords="offset points", fontsize=11)
    ax.grid(alpha=0.3)
ax_all.add_patch(plt.Rectangle(lo.tolist(), *(hi - lo).tolist(), fill=False, ls="--", color="gray"))
ax_all.set_title("2-D character embeddings (the box is zoomed on the right)")
near_lo, near_hi = C2[inside].min(dim=0).values, C2[inside].max(dim=0).values
margin = 0.08 * (near_hi - near_lo)
ax_zoom.set_xlim((near_lo[0] - margin[0]).item(), (near_hi[0] + margin[0]).item())
ax_zoom.set_ylim((near_lo[1] - margin[1]).item(), (near_hi[1] + margin[1]).item())
ax_zoom.set_title("inside the box")
save_figure(fig, "02_mlp_embeddings.png")
plt.show()

# %% [markdown]
# In our full run on the embedded names ($d = 2$, validation loss about
# 2.34, against about 2.18 with $d = 10$), the vowels `a e i o` and `y` sit together,
# away from a tight cluster of most consonants. The end token `.` sits on
# its own, and a few letters (`u`, `l`, `g`, `p`) are placed far out. The
# exact picture depends on the seed and the data. Nobody told the network
# what a vowel is. It found that these letters are interchangeable in many
# contexts, and placed them accordingly.
#
# ## Exercise 6: sampling
#
# To generate a name, start from the all-`.` context and repeat: compute the
# logits of the context (a batch of one), turn them into probabilities with a
# softmax **over the vocabulary**, draw the next token with
# `torch.multinomial(..., generator=generator)`, and slide the window. Stop
# when `.` is drawn. Use the generator you are given and nothing else, so
# that the same seed gives the same names. Call your `forward`; take the
# block size from the argument.

# %% nbgrader={"grade": false, "grade_id": "sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample(params, itos, generator, block_size=3):
    """Sample one name from the model.

    Args:
        params: [C, W1, b1, W2, b2]; itos: dict from index to character;
        generator: torch.Generator, the only source of randomness; block_size: context length.
    Returns:
        The name as a str, without '.' tokens (it ends where '.' was sampled).
    """
    ### BEGIN SOLUTION
    context, out = [0] * block_size, []
    with torch.no_grad():
        while True:
            logits = forward(torch.tensor([context]), *params)  # (1, V)
            probs = F.softmax(logits, dim=1)
            ix = torch.multinomial(probs, num_samples=1, generator=generator).item()
            if ix == 0:
                return "".join(out)
            out.append(itos[ix])
            context = context[1:] + [ix]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sample", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.sample(sample, forward, embed)
### BEGIN HIDDEN TESTS
check.sample(sample, forward, embed, seed=20171)
### END HIDDEN TESTS

# %%
g = torch.Generator().manual_seed(2147483647 + 10)
names = [sample(params, itos, g, BLOCK_SIZE) for _ in range(20)]
print(", ".join(names))
known = set(train_words)
print(f"{sum(n in known for n in names)} of {len(names)} samples are training names")
if fast_mode():
    print("fast mode: these samples come from the model trained for 2,000 steps, far from trained; "
          "the full run's samples are more name-like")

# %% [markdown]
# Compare these samples with the bigram's. Three characters of context give
# far more name-like strings. Some samples are real names from the training
# set. Most are new names that the model *composes* from what it learned.
#
# ## What to take away
#
# - Count tables need one row per context, $V^n$ rows for $n$ tokens. Most
#   contexts are never seen, and the count model cannot generalise to them.
#   With short contexts a smoothed table is still a strong baseline: measure
#   it before claiming a network beats it.
# - Learned embeddings place tokens in a continuous space where similar
#   tokens are close. A neural network on top of them generalises to unseen
#   contexts, and its size grows linearly with the context.
# - Cross-entropy on logits must be computed with the log-sum-exp trick;
#   `F.cross_entropy` does this for you, and faster.
# - Mini-batch SGD trades exact gradients for many cheap steps. A sweep
#   finds the order of magnitude of the learning rate.
# - Judge a model on validation data, and look at test data once. A small
#   train/val gap means under-fitting, a growing one over-fitting.
#
# Lesson 03 looks inside this network while it trains. It finds that the
# initialisation wastes the first thousands of steps, fixes it, and adds
# BatchNorm.
#
# ## References
#
# - Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin. A Neural Probabilistic
#   Language Model. *Journal of Machine Learning Research* 3 (2003),
#   1137-1155.
# - S. Katz. Estimation of probabilities from sparse data for the language
#   model component of a speech recognizer. *IEEE Transactions on Acoustics,
#   Speech, and Signal Processing* 35(3) (1987), 400-401.
# - R. Kneser, H. Ney. Improved backing-off for m-gram language modeling.
#   *ICASSP* 1995, 181-184.
