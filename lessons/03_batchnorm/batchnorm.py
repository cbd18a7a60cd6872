# %% [markdown]
# # Lesson 03: initialisation, BatchNorm, and looking inside a network
#
# Lesson 02 trained a multi-layer perceptron on names: three characters of
# context, embedded, concatenated, a tanh hidden layer, a softmax over 27
# tokens. It worked, but it worked *despite* its start. This lesson looks at
# what the network does at step 0 and during the first steps, and at the tools
# that make deep networks trainable:
#
# 1. **Initialisation.** What the loss should be before any training, why a
#    naive start is far off, and how to scale the weights (Kaiming).
# 2. **Batch normalisation** (Ioffe & Szegedy 2015), written from scratch and
#    compared with `torch.nn.BatchNorm1d`, detail by detail.
# 3. **Diagnostics** of a deep stack of layers: activation and gradient
#    histograms, saturation, and the update:data ratio.
# 4. **The "batch" in BatchNorm** (Wu & Johnson 2021): what goes wrong because
#    an example's output depends on the other examples of its batch.
#
# References:
#
# - S. Ioffe, C. Szegedy. *Batch Normalization: Accelerating Deep Network
#   Training by Reducing Internal Covariate Shift.* ICML 2015, arXiv:1502.03167.
# - Y. Wu, J. Johnson. *Rethinking "Batch" in BatchNorm.* 2021, arXiv:2105.07576.
# - K. He, X. Zhang, S. Ren, J. Sun. *Delving Deep into Rectifiers.* ICCV 2015
#   (the "Kaiming" initialisation), arXiv:1502.01852.
# - X. Glorot, Y. Bengio. *Understanding the difficulty of training deep
#   feedforward neural networks.* AISTATS 2010.
#
# **How to work.** Fill in each `YOUR CODE HERE`, keep the signatures, and run
# the checks: `pytest checks/lesson03` (all) or
# `pytest checks/lesson03 -k BatchNorm1d` (one). The cell after each exercise
# runs the same check.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from checks.lesson03 import exercises as check
from course.data import load_names, split
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small tensors: one thread is several times faster here

# %% [markdown]
# ## The data
#
# The same names and the same 80/10/10 split as in lessons 01 and 02. The
# examples are built as in lesson 02: every position of every `.`-padded name
# gives one example, the `BLOCK_SIZE` previous tokens as context and the next
# token as target. This helper is given, so this lesson stands on its own.

# %%
DATA = "embedded"  # or "classic", or a path to makemore's names.txt
BLOCK_SIZE = 3


def build_dataset(words, stoi, block_size):
    """(X, Y): X int64 (n, block_size) contexts, Y int64 (n,) next tokens.

    The context starts as block_size '.' tokens (index 0) and slides along
    the name; the last target of each name is '.', the end.
    """
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

# %% [markdown]
# ## Part 1: what the loss should be at step 0
#
# Before training, the network knows nothing, so the honest prediction is
# the uniform distribution over the $V = 27$ tokens. Its loss on any example
# is
#
# $$-\ln \frac{1}{27} = \ln 27 \approx 3.2958 .$$
#
# A freshly initialised network should start near that value. If it starts
# far above, it is *confidently wrong*. The first steps are then spent
# undoing the confidence, and the loss curve has a "hockey stick": a steep
# drop followed by the real learning.
#
# Here is lesson 02's MLP with every parameter drawn from $\mathcal N(0, 1)$:

# %%
N_EMBD, N_HIDDEN = 10, 200


def mlp_forward(params, X):
    """Lesson 02's MLP: logits (n, V) for contexts X (n, block_size)."""
    emb = params["C"][X].view(len(X), -1)  # (n, block_size * n_embd)
    h = torch.tanh(emb @ params["W1"] + params["b1"])  # (n, n_hidden)
    return h @ params["W2"] + params["b2"]


# %%
g = torch.Generator().manual_seed(2147483647)
fan_in = BLOCK_SIZE * N_EMBD
naive = {"C": torch.randn(V, N_EMBD, generator=g), "W1": torch.randn(fan_in, N_HIDDEN, generator=g),
         "b1": torch.randn(N_HIDDEN, generator=g), "W2": torch.randn(N_HIDDEN, V, generator=g),
         "b2": torch.randn(V, generator=g)}
with torch.no_grad():
    batch = torch.randint(0, len(Xtr), (1000,), generator=g)
    logits = mlp_forward(naive, Xtr[batch])
    naive_loss = F.cross_entropy(logits, Ytr[batch]).item()
print(f"initial loss with N(0, 1) parameters: {naive_loss:.2f}   (uniform guess: ln 27 = {math.log(27):.4f})")
print(f"std of the logits: {logits.std():.1f}")

# %% [markdown]
# ### Why about 27?
#
# The hidden units $h$ are tanh outputs, so $|h_j| \le 1$, and most of them sit
# near $\pm 1$ (more on that below). A logit is a sum of 200 terms $h_j W_{jk}$
# with $W_{jk} \sim \mathcal N(0, 1)$, so its standard deviation is about
# $\sqrt{200 \cdot \mathbb E[h^2]} \approx 13$. With logits that spread out,
# the softmax puts nearly all its mass on the largest logit, and the loss of
# an example is close to the gap between that largest logit and the logit of
# the correct token:
#
# $$-\ln p_y = \operatorname{logsumexp}(z) - z_y \approx \max_k z_k - z_y .$$
#
# The largest of 27 standard normal numbers is about 2 on average (1.998, to
# be precise; the cell below estimates it from 10,000 draws), and the correct token is no better than any other, so the
# expected loss is roughly $13 \times 2 \approx 26$: the 25 to 28 we see. The loss is large *because the logits are
# large*, not because the predictions are systematically bad: they are random,
# but stated with great confidence.
#
# ### Softmax overconfidence in four numbers
#
# The same logits, scaled up, show it. The probabilities go from uniform to
# nearly one-hot, and the loss of a wrong guess grows linearly with the scale.

# %%
z = torch.tensor([1.0, -0.5, 0.3, -2.0])
for scale in (0.0, 1.0, 10.0, 100.0):
    p = F.softmax(scale * z, dim=0)
    print(f"scale {scale:>5}: p = {[round(v, 3) for v in p.tolist()]}   "
          f"loss if the answer is token 1: {-torch.log_softmax(scale * z, 0)[1].item():7.2f}")
big = torch.randn(10_000, 27, generator=g)
print(f"E[max of 27 N(0,1)] = {big.max(1).values.mean():.2f}")

# %% [markdown]
# The cure for the output layer: make the logits small at the start. Set
# $b_2 = 0$ (no token preferred) and scale $W_2$ down to $0.01\,\mathcal N(0,1)$.
# Don't set $W_2$ to exactly 0: then every hidden unit would receive the same
# gradient from the output layer at step 0 and the symmetry between the units
# would only be broken by the noise in $W_1$.
#
# ### Tanh saturation
#
# The hidden layer has a problem of its own. Its pre-activations
# $a = \mathrm{emb}\, W_1 + b_1$ are sums of $30$ products of unit normals,
# with standard deviation about $\sqrt{30} \approx 5.5$. The tanh squashes
# almost all of them to $\pm 1$:

# %%
with torch.no_grad():
    emb = naive["C"][Xtr[batch]].view(len(batch), -1)
    hpre = emb @ naive["W1"] + naive["b1"]
    h = torch.tanh(hpre)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
axes[0].hist(hpre.flatten().tolist(), bins=60)
axes[0].set_title(f"pre-activations (std {hpre.std():.1f})")
axes[1].hist(h.flatten().tolist(), bins=60)
axes[1].set_title(f"tanh outputs: {(h.abs() > 0.97).float().mean():.0%} have |h| > 0.97")
axes[2].imshow(h[:40].abs() > 0.97, cmap="gray", interpolation="nearest", aspect="auto")
axes[2].set_title("|h| > 0.97 (white), 40 examples x 200 units")
axes[2].set_xlabel("hidden unit")
axes[2].set_ylabel("example")
save_figure(fig, "03_tanh_saturation.png")
plt.show()

# %% [markdown]
# Why it matters: backpropagation through $t = \tanh(a)$ multiplies the
# incoming gradient by
#
# $$\frac{\partial t}{\partial a} = 1 - t^2 ,$$
#
# which is 0 when $|t| = 1$ and below 0.06 when $|t| > 0.97$, the threshold
# this lesson calls *saturated* (exercise 5). A saturated unit passes (almost) no gradient to
# $W_1$, $b_1$ and $C$. A column of the right plot that is white from top to
# bottom is a unit saturated on every example: a *dead* unit that no batch
# can revive. The same happens with sigmoids, and with ReLUs whose input is
# always negative.
#
# ### Kaiming initialisation
#
# Take $y = x W$ with $x \in \mathbb R^{n}$ of independent entries of mean 0
# and variance $\sigma_x^2$, and $W_{ij}$ independent with variance $\sigma_w^2$.
# Then each output is a sum of $n$ independent products and
#
# $$\operatorname{Var}(y_j) = n \, \sigma_w^2 \, \sigma_x^2 .$$
#
# To keep the variance from layer to layer, take $\sigma_w = 1/\sqrt{n}$, with
# $n$ = *fan-in*, the number of inputs. (With $n = 1000$ and $\sigma_w = 1$ the
# std grows by $\sqrt{1000} \approx 31.6$ in one layer: see below.) A
# nonlinearity changes the variance too. A ReLU zeroes half of its input, so
# He et al. use $\sigma_w = \sqrt{2/n}$. A tanh shrinks its input, and the
# *gain* that compensates is $5/3$ (`torch.nn.init.calculate_gain("tanh")`):
#
# $$W \sim \mathcal N\!\left(0, \left(\tfrac{\text{gain}}{\sqrt{\text{fan-in}}}\right)^2\right), \qquad \text{gain}_{\tanh} = 5/3 .$$
#
# The gain trades two failures. Too small, and the signal shrinks layer after
# layer until the tanh is linear and the stack collapses to one linear map.
# Too large, and every layer saturates.

# %%
x = torch.randn(1000, 1000, generator=g)
for name, w in (("N(0, 1)", torch.randn(1000, 1000, generator=g)),
                ("N(0, 1/1000)", torch.randn(1000, 1000, generator=g) / 1000**0.5)):
    print(f"x std {x.std():.3f} -> (x @ W) std {(x @ w).std():6.2f}   with W ~ {name}")
print("tanh gain in PyTorch:", nn.init.calculate_gain("tanh"))

# %% [markdown]
# ## Exercise 1: an initialisation with the right initial loss
#
# Write `init_mlp`, the initialisation of lesson 02's MLP that starts at the
# uniform loss. Draw, in this order and all with `generator`:
#
# | tensor | shape | distribution |
# |---|---|---|
# | `C` | (vocab_size, n_embd) | $\mathcal N(0, 1)$ |
# | `W1` | (block_size·n_embd, n_hidden) | $\mathcal N(0, 1) \cdot \frac{5/3}{\sqrt{\text{fan-in}}}$, fan-in = block_size·n_embd |
# | `b1` | (n_hidden,) | $0.01\,\mathcal N(0, 1)$ |
# | `W2` | (n_hidden, vocab_size) | $0.01\,\mathcal N(0, 1)$ |
# | `b2` | (vocab_size,) | zeros |
#
# Every tensor must be a leaf that requires grad: scale first, then call
# `.requires_grad_()`. The check computes the initial loss of your model on
# random data and expects $\ln 27 \pm 0.05$. It also checks each tensor's
# shape, dtype (float32) and spread (the std of `W1` within 5 % of
# $\frac{5/3}{\sqrt{\text{fan-in}}}$, for example), and compares your tensors
# with `torch.randn` draws made in the order of the table.

# %% nbgrader={"grade": false, "grade_id": "init_mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def init_mlp(vocab_size, block_size, n_embd, n_hidden, generator):
    """Parameters of the MLP, initialised to start at the uniform loss.

    Returns:
        dict with keys "C", "W1", "b1", "W2", "b2" (shapes in the table
        above), float32 leaf tensors with requires_grad=True.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_init_mlp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.init_mlp(init_mlp)

# %% [markdown]
# ### The effect on training
#
# Train both initialisations for a few thousand steps with the same batches
# (batch 32, learning rate 0.1). The naive one spends its first thousand or
# two steps just undoing its overconfidence, the "hockey stick". Even after
# 10,000 steps it stays well behind (validation 2.83 against 2.30 in our run
# on the embedded names): its saturated tanh units learn slowly.

# %%
def train_mlp(params, steps, lr=0.1, batch_size=32, seed=0):
    """Plain mini-batch SGD on lesson 02's MLP; returns the loss of each step."""
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        ix = torch.randint(0, len(Xtr), (batch_size,), generator=gen)
        loss = F.cross_entropy(mlp_forward(params, Xtr[ix]), Ytr[ix])
        for p in params.values():
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
        losses.append(loss.item())
    return losses


def val_loss(forward, X, Y):
    with torch.no_grad():
        return F.cross_entropy(forward(X), Y).item()


# %%
short = 200 if fast_mode() else 10_000
for p in naive.values():
    p.requires_grad_()
fixed = init_mlp(V, BLOCK_SIZE, N_EMBD, N_HIDDEN, torch.Generator().manual_seed(2147483647))
curves = {"N(0, 1) everywhere": train_mlp(naive, short), "init_mlp": train_mlp(fixed, short)}
for name, params in (("N(0, 1) everywhere", naive), ("init_mlp", fixed)):
    print(f"{name:>20}: after {short} steps val loss {val_loss(lambda X: mlp_forward(params, X), Xva, Yva):.4f}")
if fast_mode():
    print("fast mode: 200 steps instead of 10,000, so the figures differ; the full run gives val 2.83 (N(0, 1)) "
          "against 2.30 (init_mlp)")

fig, ax = plt.subplots(figsize=(8, 4))
for name, losses in curves.items():
    smooth = torch.tensor(losses).view(-1, short // 100).mean(1)  # the mean of each 1 % of the steps
    ax.plot(torch.arange(len(smooth)) * (short // 100), smooth, label=name)
ax.axhline(math.log(V), color="gray", ls=":", label="ln V")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("training loss (batch mean, smoothed)")
ax.legend()
save_figure(fig, "03_init_loss_curves.png")
plt.show()

# %% [markdown]
# Published full runs of these variants (makemore's names.txt, 200k steps
# each) tell the same story in numbers: the original MLP reaches a validation
# loss of about 2.17; small $W_2$ and zero $b_2$ give 2.13; fixing the tanh
# saturation as well gives 2.10; Kaiming with gain 5/3 gives the same as a
# hand-tuned scale, without the tuning. This course's own full run of the
# BatchNorm version below is recorded in `extras/benchmarks/lesson03.md`.
#
# ## Part 2: batch normalisation
#
# Kaiming's formula keeps the *expected* scale right at step 0, but it needs
# a gain for every nonlinearity, and the weights drift away from their
# initial scale during training. Ioffe & Szegedy's idea is blunt: if we want
# the pre-activations to be roughly unit Gaussian, **normalise them**, over
# the current mini-batch, and let the network learn the scale and the shift
# it prefers.
#
# For a batch $x \in \mathbb R^{B \times D}$ (B examples, D features), in
# **training mode**, for each feature $j$:
#
# $$\mu_j = \frac1B \sum_{i=1}^{B} x_{ij}, \qquad
#   \sigma_j^2 = \frac1B \sum_{i=1}^{B} (x_{ij} - \mu_j)^2, \qquad
#   y_{ij} = \gamma_j \, \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \varepsilon}} + \beta_j .$$
#
# - The statistics are **per feature, over the batch** (dim 0). Reducing over
#   dim 1 normalises each example across its features instead: that is a
#   different layer (LayerNorm, lesson 06).
# - The variance used to normalise is the **biased** one (divide by $B$).
# - $\varepsilon$ (default $10^{-5}$) goes **inside** the square root; it
#   keeps a feature of near-constant value from dividing by zero.
# - $\gamma$ (the gain, starts at 1) and $\beta$ (the bias, starts at 0) are
#   learned. With $\gamma = \sigma$ and $\beta = \mu$ the layer could undo the
#   normalisation, so it removes nothing the network needs.
# - The gradient flows through $\mu$ and $\sigma^2$ too: they are functions
#   of the batch and autograd differentiates them.
#
# ### Evaluation mode and running statistics
#
# At test time we want the prediction for *one* name, not one that depends
# on which other names share its batch. So the layer also keeps running
# estimates of the mean and variance, updated at each training step with an
# exponential moving average of the batch statistics:
#
# $$\hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_{\text{batch}}, \qquad
#   \hat\sigma^2 \leftarrow (1 - m)\,\hat\sigma^2 + m\,\frac{B}{B-1}\sigma^2_{\text{batch}} ,$$
#
# with momentum $m$ (PyTorch's default 0.1; the *new* batch gets the weight
# $m$, which is the opposite of the optimisers' "momentum" convention). In
# **evaluation mode** the layer normalises with $\hat\mu, \hat\sigma^2$ and
# changes nothing.
#
# Note the $\frac{B}{B-1}$: PyTorch normalises a batch with the biased
# variance but stores the *unbiased* one (Bessel's correction) in
# `running_var`. The running estimate is meant for the population, and the
# biased batch variance underestimates it on average by the factor
# $\frac{B-1}{B}$. This mix is a classic source of confusion
# (pytorch#19902): a layer that uses either variance for both purposes does
# not match `nn.BatchNorm1d`.
#
# A batch of **one** has no variance at all: $x - \mu = 0$. In training mode
# that is an error (PyTorch raises `ValueError`), not something to normalise.
#
# ## Exercise 2: `BatchNorm1d`
#
# Write the layer. Interface (the same for every layer of this lesson):
# calling the layer computes and returns its output and also keeps it in
# `self.out`; `parameters()` lists the tensors that SGD updates; the mode is
# the attribute `self.training` (True at creation). The check compares your
# layer with `torch.nn.BatchNorm1d` in both modes, over several steps, with
# different `eps` and `momentum`, including the gradients.

# %% nbgrader={"grade": false, "grade_id": "BatchNorm1d", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BatchNorm1d:
    """Batch normalisation of a (batch, dim) input, like torch.nn.BatchNorm1d.

    Attributes:
        gamma (dim,) ones, beta (dim,) zeros: the learned gain and bias, leaf
            tensors with requires_grad=True; parameters() == [gamma, beta].
        running_mean (dim,) zeros, running_var (dim,) ones: no gradient.
        eps, momentum, training (True at creation), out (the last output).
    Training mode: normalise with the batch mean and *biased* variance, then
    update running_mean/running_var with the batch mean and *unbiased*
    variance: running = (1 - momentum) * running + momentum * batch value.
    A batch of one raises ValueError. Evaluation mode: normalise with the
    running statistics and leave them unchanged.
    """

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x):
        # YOUR CODE HERE
        raise NotImplementedError()

    def parameters(self):
        # YOUR CODE HERE
        raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_BatchNorm1d", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
check.BatchNorm1d(BatchNorm1d)

# %% [markdown]
# ### A bias before BatchNorm is wasted
#
# Any constant $b_j$ added to feature $j$ before the layer is added to
# $\mu_j$ too, and $x_{ij} + b_j - (\mu_j + b_j) = x_{ij} - \mu_j$: it cancels.
# Its gradient is therefore zero (up to rounding), and SGD never moves it.
# The layer's $\beta$ does the job of that bias, so a Linear layer followed by
# BatchNorm is built **without** a bias. (In the published notebooks such a
# `b1` stays in the parameter list; if it is not used at all its `.grad` is
# `None` and the update crashes.)

# %%
bn = BatchNorm1d(5)
xb = torch.randn(8, 5, generator=g)
b = torch.randn(5, generator=g).requires_grad_()
out = bn(xb + b)
print("output changed by the bias:", (out - bn(xb)).abs().max().item())
(out * torch.randn(8, 5, generator=g)).sum().backward()
print("gradient of the bias:      ", b.grad.abs().max().item())

# %% [markdown]
# ### The MLP with BatchNorm
#
# Put the layer between the first matrix product and the tanh of lesson 02's
# MLP, drop $b_1$, and train with the full recipe: batch 32, 200,000 steps,
# learning rate 0.1 then 0.01 after 100,000 steps. The momentum is 0.001, so
# that the running statistics average over the last thousand or so batches.
# (With fast mode on, as under the tests, the run is much shorter.)

# %%
def bn_mlp_forward(params, bn, X):
    """The MLP with BatchNorm before the tanh (and without b1): logits (n, V)."""
    emb = params["C"][X].view(len(X), -1)
    h = torch.tanh(bn(emb @ params["W1"]))
    return h @ params["W2"] + params["b2"]


def set_training(layers, training):
    """Switch every layer to training (True) or evaluation (False) mode."""
    for layer in layers:
        layer.training = training


# %%
steps = 500 if fast_mode() else 200_000
g = torch.Generator().manual_seed(2147483647)
params = init_mlp(V, BLOCK_SIZE, N_EMBD, N_HIDDEN, g)
bn1 = BatchNorm1d(N_HIDDEN, momentum=0.001)
trained = [params[k] for k in ("C", "W1", "W2", "b2")] + bn1.parameters()  # b1 is not used
print(f"parameters: {sum(p.numel() for p in trained)}")
losses = []
for step in progress(range(steps), desc="BatchNorm MLP"):
    ix = torch.randint(0, len(Xtr), (32,), generator=g)
    loss = F.cross_entropy(bn_mlp_forward(params, bn1, Xtr[ix]), Ytr[ix])
    for p in trained:
        p.grad = None
    loss.backward()
    lr = 0.1 if step < steps // 2 else 0.01
    with torch.no_grad():
        for p in trained:
            p -= lr * p.grad
    losses.append(loss.item())

set_training([bn1], False)  # evaluate with the running statistics
bn_train = val_loss(lambda X: bn_mlp_forward(params, bn1, X), Xtr, Ytr)
bn_val = val_loss(lambda X: bn_mlp_forward(params, bn1, X), Xva, Yva)
print(f"after {steps} steps, running statistics: train {bn_train:.4f}  val {bn_val:.4f}")
if fast_mode():
    print("fast mode: 500 steps instead of 200,000, so the figures differ; the full run reaches train about "
          "2.071, val about 2.122 (2.121 to 2.123 over three seeds)")

# %%
fig, ax = plt.subplots(figsize=(8, 4))
chunk = max(steps // 200, 1)
ax.plot(torch.arange(steps // chunk) * chunk, torch.tensor(losses[: steps // chunk * chunk]).view(-1, chunk).mean(1))
ax.set_xlabel("step")
ax.set_ylabel(f"training loss (mean of {chunk} steps)")
ax.set_title("MLP with BatchNorm")
save_figure(fig, "03_bn_mlp_training.png")
plt.show()

# %% [markdown]
# ## Part 3: a deep network, and how to look inside it
#
# One hidden layer forgives a lot. A deep stack does not: whatever each layer
# does to the scale of its input compounds. To build deep stacks easily we
# write the layers as small classes with one interface, like `torch.nn`:
# `layer(x)` computes the output (and keeps it in `layer.out` so we can
# inspect it), `layer.parameters()` lists what SGD updates.
#
# ## Exercise 3: `Linear`
#
# `weight` has shape (fan_in, fan_out), so the layer computes
# `x @ weight + bias` (PyTorch stores the transpose). Initialise the weight
# from $\mathcal N(0,1) \cdot \text{gain} / \sqrt{\text{fan-in}}$ with the
# generator, and the bias (if any) at zero. With `bias=False` the attribute
# `bias` is `None`.

# %% nbgrader={"grade": false, "grade_id": "Linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Linear:
    """y = x @ weight (+ bias), with a Kaiming-normal weight.

    Attributes:
        weight (fan_in, fan_out) ~ N(0, 1) * gain / sqrt(fan_in), drawn with
        `generator`; bias (fan_out,) zeros, or None when bias=False; both leaf
        tensors with requires_grad=True; out: the last output.
    parameters() == [weight, bias], or [weight] when bias=False (a list, as
    every layer's).
    """

    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x):
        # YOUR CODE HERE
        raise NotImplementedError()

    def parameters(self):
        # YOUR CODE HERE
        raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_Linear", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.Linear(Linear)

# %% [markdown]
# The tanh layer has no parameters; it is given.

# %%
class Tanh:
    def __init__(self):
        self.training = True  # no effect; every layer has the attribute

    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []


# %% [markdown]
# ## Exercise 4: a deep MLP from your layers
#
# Build the embedding table `C` (vocab_size, n_embd) from $\mathcal N(0,1)$ and
# the list of layers
#
# `[Linear(block_size*n_embd, n_hidden), BatchNorm1d(n_hidden), Tanh()]`,
# then `n_layers - 1` times `[Linear(n_hidden, n_hidden), BatchNorm1d(n_hidden), Tanh()]`,
# then `[Linear(n_hidden, vocab_size), BatchNorm1d(vocab_size)]`,
#
# every Linear without bias, the hidden ones (followed by a tanh) with gain
# 5/3, the output one with gain 1. Finally multiply the **last** BatchNorm's
# `gamma` by 0.1 (under `torch.no_grad()`, so it stays a leaf): the logits
# start small, the softmax near uniform. `C` must require grad too. The
# forward pass is then `x = C[X].view(len(X), -1)` followed by
# `x = layer(x)` for each layer. With 5 layers of 100 units this net has
# 47,024 parameters.

# %% nbgrader={"grade": false, "grade_id": "build_deep_mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_deep_mlp(vocab_size, block_size, n_embd, n_hidden, n_layers, generator):
    """The deep MLP of this lesson, from Linear, BatchNorm1d and Tanh.

    Returns:
        (C, layers): C a (vocab_size, n_embd) leaf tensor requiring grad;
        layers the list described above (3 * n_layers + 2 layers).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_build_deep_mlp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.build_deep_mlp(build_deep_mlp, Linear, BatchNorm1d)

# %% [markdown]
# ## Exercise 5 and 6: two diagnostics
#
# Two numbers summarise the health of a layer.
#
# **Saturation** of a tanh layer: the fraction of its outputs with
# $|t| > 0.97$, where $1 - t^2 < 0.06$ and the unit passes less than 6 % of
# its gradient. A few percent is healthy; tens of percent means the layer is
# learning slowly, if at all.
#
# **The update:data ratio** of a parameter $p$ after an SGD step
# $p \leftarrow p - \eta\, \nabla p$:
#
# $$\frac{\operatorname{std}(\eta\, \nabla p)}{\operatorname{std}(p)} .$$
#
# It says by what fraction of its typical size the parameter moves in one
# step. A common rule of thumb is about $10^{-3}$. Much smaller and the
# layer learns too slowly (raise the learning rate); much larger and the
# parameter is thrown around. With $\eta = 1$ it is the **gradient:data
# ratio**. (Use the standard deviation, not the mean absolute value, so that
# a parameter far from 0 with a small spread is not called "large".)

# %% nbgrader={"grade": false, "grade_id": "saturation_fraction", "locked": false, "schema_version": 3, "solution": true, "task": false}
def saturation_fraction(t, threshold=0.97):
    """The fraction of the entries of t with |t| > threshold (strictly), as a
    Python float in [0, 1]."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_saturation_fraction", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.saturation_fraction(saturation_fraction)

# %% nbgrader={"grade": false, "grade_id": "update_to_data_ratio", "locked": false, "schema_version": 3, "solution": true, "task": false}
def update_to_data_ratio(param, grad, lr):
    """std(lr * grad) / std(param), as a Python float (not its log)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_update_to_data_ratio", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.update_to_data_ratio(update_to_data_ratio)

# %% [markdown]
# ### Training the deep net, with the instruments on
#
# We train the 5 x 100 network for 1,000 steps and record the update:data
# ratio of every weight matrix at every step. At the last step we keep the
# tanh outputs, their gradients (`retain_grad` keeps the gradient of a
# non-leaf tensor) and the weight gradients.
#
# To see what BatchNorm buys, we train four versions of the stack: with and
# without the BatchNorm layers, each with the Kaiming gain 5/3 and with a
# gain of 0.2, far too small for tanh.

# %%
def deep_net(use_bn, gain, seed=2147483647, n_layers=5, n_hidden=100):
    """C and layers of the 5 x 100 net, hidden weights with the given gain;
    without BatchNorm (and with biases) when use_bn is False."""
    gen = torch.Generator().manual_seed(seed)
    if use_bn:
        C, layers = build_deep_mlp(V, BLOCK_SIZE, N_EMBD, n_hidden, n_layers, gen)
        with torch.no_grad():
            for layer in layers[:-2]:
                if isinstance(layer, Linear):
                    layer.weight *= gain / (5 / 3)
        return C, layers
    C = torch.randn(V, N_EMBD, generator=gen).requires_grad_()
    layers, fan_in = [], BLOCK_SIZE * N_EMBD
    for _ in range(n_layers):
        layers += [Linear(fan_in, n_hidden, gain=gain, generator=gen), Tanh()]
        fan_in = n_hidden
    layers.append(Linear(fan_in, V, generator=gen))
    with torch.no_grad():
        layers[-1].weight *= 0.1  # the job of the last gamma: a less confident start
    return C, layers


def train_deep(C, layers, steps, lr=0.1, seed=0):
    """SGD on the deep net; returns the log10 update:data ratios of the weights, per step."""
    gen = torch.Generator().manual_seed(seed)
    params = [C] + [p for layer in layers for p in layer.parameters()]
    ratios = []
    for step in range(steps):
        ix = torch.randint(0, len(Xtr), (32,), generator=gen)
        x = C[Xtr[ix]].view(32, -1)
        for layer in layers:
            x = layer(x)
        loss = F.cross_entropy(x, Ytr[ix])
        for layer in layers:
            layer.out.retain_grad()  # keep the gradients of the activations for the plots
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
            ratios.append([math.log10(update_to_data_ratio(p, p.grad, lr)) for p in params if p.ndim == 2])
    return ratios, loss.item()


diag_steps = 100 if fast_mode() else 1_000
nets = {f"{'BatchNorm' if bn else 'no BatchNorm'}, gain {name}": deep_net(bn, gain)
        for bn in (True, False) for name, gain in (("5/3", 5 / 3), ("0.2", 0.2))}
ratio_log = {}
for name, (C, layers) in nets.items():
    ratio_log[name], last = train_deep(C, layers, diag_steps)
    print(f"{name:<24} loss at step {diag_steps}: {last:.3f}")
if fast_mode():
    print("fast mode: 100 steps instead of 1,000; the plots below tell the same story, with noisier curves; "
          "after 1,000 steps every tanh layer with BatchNorm has a std of 0.64 to 0.67 and 0.5 to 3.3 % "
          "saturated, without BatchNorm (gain 5/3) 9.7 to 23.5 %")

# %% [markdown]
# ### Activations: histograms and saturation per layer
#
# For each tanh layer, the distribution of its outputs on the last batch, with
# their standard deviation and saturation. With BatchNorm every layer looks
# alike, a std of about 0.6 to 0.7 and at most a few percent saturated, whatever the
# depth **and whatever the gain**: the layer divides the scale of the weights
# out. Without BatchNorm the gain decides. With 0.2 each layer multiplies the
# scale by about 0.2 at the start and the signal all but vanishes in the
# middle of the stack (the last layers grow their weights during training
# and partly recover). With 5/3 it holds, at the price of more saturation,
# about 10 to 25 % per layer (these figures are from the full run of 1,000 steps).

# %%
def tanh_layers(layers):
    """(name, layer) of each tanh layer: tanh 1, tanh 2, ..."""
    return [(f"tanh {j}", layer) for j, layer in enumerate((la for la in layers if isinstance(la, Tanh)), 1)]


def weight_matrices(C, layers):
    """(name, tensor) of each weight matrix: C, then W1, W2, ... (the Linear layers in order)."""
    return [("C", C)] + [(f"W{j}", la.weight) for j, la in enumerate((la for la in layers if isinstance(la, Linear)), 1)]


def curve(ax, t, label, **kw):
    """A histogram drawn as a line, so that several layers fit in one plot."""
    counts, edges = torch.histogram(t.detach().flatten().float(), bins=50, density=True, **kw)
    ax.plot(((edges[:-1] + edges[1:]) / 2).tolist(), counts.tolist(), label=label)


fig, axes = plt.subplots(2, 2, figsize=(14, 8))
for ax, (name, (C, layers)) in zip(axes.flat, nets.items()):
    for i, layer in tanh_layers(layers):
        t = layer.out.detach()
        curve(ax, t, f"{i}: std {t.std():.2g}, saturated {saturation_fraction(t):.1%}", range=(-1.0, 1.0))
        print(f"{name:<24} {i}: mean {t.mean():+.2f}  std {t.std():.2g}  saturated {saturation_fraction(t):.1%}")
    ax.set_title(f"{name}: tanh outputs")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "03_activation_histograms.png")
plt.show()

# %% [markdown]
# ### Gradients of the activations
#
# The same picture for the gradient of the loss with respect to each tanh
# layer's output. In a healthy stack the layers get gradients of similar
# size: none drowned, none exploding as we go back towards the input. Look
# at the standard deviations in the legends rather than at the shapes (the
# density is on a log scale, so that a spike of tiny gradients and a broad
# curve fit in one panel).

# %%
fig, axes = plt.subplots(2, 2, figsize=(14, 8))
for ax, (name, (C, layers)) in zip(axes.flat, nets.items()):
    for i, layer in tanh_layers(layers):
        curve(ax, layer.out.grad, f"{i}: std {layer.out.grad.std():.1e}")
    ax.set_title(f"{name}: gradients of the tanh outputs")
    ax.set_yscale("log", nonpositive="mask")  # one scale for broad curves and for spikes of tiny gradients
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "03_gradient_histograms.png")
plt.show()

# %% [markdown]
# ### Weight gradients and the gradient:data ratio
#
# For each weight matrix, the distribution of its gradient at the last step
# and the ratio $\operatorname{std}(\nabla W)/\operatorname{std}(W)$.

# %%
fig, axes = plt.subplots(2, 2, figsize=(14, 8))
for ax, (name, (C, layers)) in zip(axes.flat, nets.items()):
    for wname, w in weight_matrices(C, layers):
        curve(ax, w.grad, f"{wname} {tuple(w.shape)}: grad:data {update_to_data_ratio(w, w.grad, 1.0):.1e}")
    ax.set_title(f"{name}: weight gradients")
    ax.set_yscale("log", nonpositive="mask")
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "03_weight_gradients.png")
plt.show()

# %% [markdown]
# ### Saturation and gradient:data, layer by layer
#
# The same numbers as bars: the saturation of each tanh layer, and the
# gradient:data ratio of each weight matrix (log scale), for the four nets.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4))
width = 0.2
for k, (name, (C, layers)) in enumerate(nets.items()):
    sat = [saturation_fraction(layer.out) for _, layer in tanh_layers(layers)]
    ax1.bar([j + k * width for j in range(len(sat))], [100 * s for s in sat], width, label=name)
    ws = [w for _, w in weight_matrices(C, layers)]
    ax2.bar([j + k * width for j in range(len(ws))], [update_to_data_ratio(w, w.grad, 1.0) for w in ws], width,
            label=name)
ax1.set_xticks([j + 1.5 * width for j in range(5)], [name for name, _ in tanh_layers(layers)])
ax1.set_ylabel("saturated (|t| > 0.97), %")
ax1.legend(fontsize=8)
ax2.set_xticks([j + 1.5 * width for j in range(7)], [name for name, _ in weight_matrices(C, layers)])
ax2.set_yscale("log")
ax2.set_ylabel("grad:data = std(grad) / std(W)")
fig.tight_layout()
save_figure(fig, "03_saturation_and_grad_ratio.png")
plt.show()

# %% [markdown]
# ### The update:data ratio over training
#
# The most useful of the plots: $\log_{10}$ of the update:data ratio of every
# weight matrix at every step, with the rule-of-thumb level $10^{-3}$.

# %%
fig, axes = plt.subplots(2, 2, figsize=(14, 8), sharey=True)
for ax, (name, ratios) in zip(axes.flat, ratio_log.items()):
    ratios = torch.tensor(ratios)
    for k in range(ratios.shape[1]):
        ax.plot(ratios[:, k].tolist(), label="C" if k == 0 else f"W{k}")
    ax.axhline(-3, color="k", ls="--")
    ax.set_title(f"{name}: log10 update:data")
    ax.set_xlabel("step")
axes.flat[0].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "03_update_to_data.png")
plt.show()

# %% [markdown]
# What the four panels say:
#
# - The output layer stands out in every net: its weights (or the last
#   gamma) were scaled down by 0.1, so the same gradient is a large fraction
#   of them. The embedding `C`, with entries of size 1, moves the least.
# - Without BatchNorm and with gain 0.2, the early layers receive almost no
#   gradient and their update:data ratio lies far below the others: the
#   layers learn at very different speeds, and no single learning rate suits
#   them all.
# - With BatchNorm and gain 0.2 the activations are the same as with 5/3,
#   but the update:data ratios are much *larger*. BatchNorm makes the output
#   invariant to the scale $c$ of the weights before it, so the gradient
#   scales as $1/c$ and the ratio as $1/c^2$: small weights behave like a
#   large learning rate. BatchNorm removes the sensitivity of the forward
#   pass to the initialisation, not of the optimisation.

# %% [markdown]
# ## Part 4: the "batch" in BatchNorm (Wu & Johnson 2021)
#
# BatchNorm is the one common layer that couples the examples of a batch. Wu
# and Johnson list the consequences; we reproduce four of them on our nets.
#
# ### 1. In training mode, an example's output depends on its batch
#
# The same name, in two different batches, gets two different outputs: the
# batch statistics differ. (This noise acts as a regulariser, which is one
# reason BatchNorm trains well, but it makes a prediction a property of a
# batch, not of an example.) In evaluation mode the two are identical.

# %%
C, layers = nets["BatchNorm, gain 5/3"]
set_training(layers, True)
first = Xtr[:1]
with torch.no_grad():
    outs = []
    for others in (Xtr[1:32], Xtr[1000:1031]):
        x = C[torch.cat([first, others])].view(32, -1)
        for layer in layers:
            x = layer(x)
        outs.append(F.softmax(x[0], dim=0))
print(f"training mode: same example, two batches: max |dp| = {(outs[0] - outs[1]).abs().max():.3f}")

# %% [markdown]
# (This forward pass in training mode also moved the running statistics a
# little: one more reason to switch modes deliberately.)
#
# ### 2. A batch of one in training mode
#
# With one example, $x - \mu = 0$ and $\sigma^2 = 0$: the output would be
# $\beta$ whatever the input, or NaN with a careless implementation. The
# right answer is an error. Sampling a name one character at a time is
# exactly this situation, which is why sampling must happen in evaluation
# mode (an upstream version of this course sampled in training mode).

# %%
try:
    layers[1](torch.randn(1, 100))
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# ### 3. Train/eval inconsistency, and population statistics
#
# In training, the layers see batch statistics. In evaluation, they see the
# running averages, which are an exponential moving average over *past*
# parameters: the early batches of the average were computed by weights that
# have since changed. Wu & Johnson recommend **recomputing the population
# statistics** after training ("PreciseBN"): freeze the weights, run the
# network in training mode over many batches of training data, and set each
# BatchNorm layer's statistics to the mean and variance of its inputs over all
# of them.
#
# ## Exercise 7: recompute the population statistics
#
# For the network `(C, layers)` and training contexts `X`: in training mode,
# without gradients, run consecutive batches `X[i : i + batch_size]` (drop a
# last incomplete batch) through the net. For every BatchNorm layer (a layer
# with a `running_mean` attribute) gather its **inputs** over all batches,
# then set its `running_mean` to their mean and its `running_var` to their
# **unbiased** variance. That is the variance over all the inputs. In terms
# of the batch means $\mu_B$ and the (biased) batch variances $\sigma^2_B$,
# Wu & Johnson write it as $\mathbb E[\sigma^2_B] + \operatorname{Var}(\mu_B)$:
# averaging the batch variances alone misses the spread of the batch means
# and comes out too small by about $\sigma^2 / B$. (Averaging *unbiased*
# batch variances, as some libraries do, is right on average, but it is not
# exactly the variance over all inputs that this exercise asks for.)
#
# Accumulate in float64 for accuracy, then store the statistics back in the
# buffers' dtype (that of `running_mean`, float32 here): a float32 network
# cannot normalise with float64 buffers. Leave every layer in evaluation mode
# (`layer.training = False`) and return nothing; the weights must not
# change. The function must work for your layers and for
# `torch.nn.BatchNorm1d` alike (the check uses the latter).

# %% nbgrader={"grade": false, "grade_id": "recompute_population_stats", "locked": false, "schema_version": 3, "solution": true, "task": false}
def recompute_population_stats(C, layers, X, batch_size=32):
    """Set every BatchNorm layer's running statistics to the population mean and
    unbiased variance of its inputs over X (network in training mode, batch by
    batch, no gradients), stored in the buffers' dtype; then put all layers in
    evaluation mode. Returns None."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_recompute_population_stats", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.recompute_population_stats(recompute_population_stats)

# %% [markdown]
# How much does it matter? For the deep net, trained briefly with momentum
# 0.1, the running statistics are an average over only the last few batches.
# For the one-layer MLP of Part 2 (momentum 0.001) they average over a
# thousand batches. We evaluate both networks on the validation set, with
# their running statistics and with recomputed population statistics.

# %%
class Fn:
    """Wraps a function as a layer, so the one-layer MLP is a list of layers too."""

    def __init__(self, fn):
        self.fn, self.training = fn, True

    def __call__(self, x):
        return self.fn(x)


# %%
def deep_loss(C, layers, X, Y):
    with torch.no_grad():
        x = C[X].view(len(X), -1)
        for layer in layers:
            x = layer(x)
        return F.cross_entropy(x, Y).item()


set_training(layers, False)
print(f"deep net,      running statistics:    val {deep_loss(C, layers, Xva, Yva):.4f}")
X_pop = Xtr[:20_000] if fast_mode() else Xtr  # fast mode: a part of the training set
recompute_population_stats(C, layers, X_pop)
print(f"deep net,      population statistics: val {deep_loss(C, layers, Xva, Yva):.4f}")

print(f"BatchNorm MLP, running statistics:    val {bn_val:.4f}")
mlp_layers = [Fn(lambda x: x @ params["W1"]), bn1, Tanh(), Fn(lambda x: x @ params["W2"] + params["b2"])]
recompute_population_stats(params["C"], mlp_layers, X_pop)
print(f"BatchNorm MLP, population statistics: val {val_loss(lambda X: bn_mlp_forward(params, bn1, X), Xva, Yva):.4f}")
if fast_mode():
    print("fast mode: short training, so the figures differ; the full run gives deep net 2.4230 -> 2.4190, "
          "BatchNorm MLP about 2.122 -> 2.122 (three seeds)")

# %% [markdown]
# ### 4. Sampling, in evaluation mode
#
# Finally the names: one example at a time, so evaluation mode is not
# optional.

# %%
set_training([bn1], False)
g = torch.Generator().manual_seed(2147483647 + 10)
samples = []
with torch.no_grad():
    for _ in range(12):
        out, context = [], [0] * BLOCK_SIZE
        while True:
            probs = F.softmax(bn_mlp_forward(params, bn1, torch.tensor([context])), dim=1)
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
# - Know the loss to expect at step 0 ($\ln V$) and check it. A much larger
#   one means overconfident logits: shrink the output layer.
# - Keep pre-activations in the range where the nonlinearity has a slope:
#   $\mathcal N(0, 1)\cdot\text{gain}/\sqrt{\text{fan-in}}$, gain 5/3 for tanh.
# - BatchNorm normalises each feature over the batch (biased variance),
#   learns a gain and a bias, keeps running statistics (unbiased variance,
#   momentum on the new batch), and switches to them in evaluation mode. A
#   bias just before it is wasted.
# - Look inside: activation and gradient histograms, saturation per layer,
#   and the update:data ratio (about $10^{-3}$) tell you what the loss curve
#   cannot.
# - The batch is part of the model in training mode. Evaluate and sample in
#   evaluation mode, never with a batch of one in training mode, and consider
#   recomputing the population statistics after training.
#
# Next, lesson 04 takes the same network apart and backpropagates through it
# by hand, BatchNorm included.
