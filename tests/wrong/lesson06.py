"""Classic mistakes in lesson 06. Each must fail its exercise's check.

Each family starts from a correct version (RIGHT, which must pass) and changes
one thing. The attention variants share one parametrised implementation so
that each differs from the right one in exactly the named way.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------- averaging


def average_right(x):
    T = x.shape[1]
    w = torch.tril(torch.ones(T, T, dtype=x.dtype))
    return (w / w.sum(1, keepdim=True)) @ x


def average_whole_sequence(x):
    """No mask: every position averages the future too."""
    return x.mean(dim=1, keepdim=True).expand_as(x)


def average_excludes_self(x):
    """Mask shifted by one: position t averages 0..t-1 (and position 0 nothing)."""
    T = x.shape[1]
    w = torch.tril(torch.ones(T, T, dtype=x.dtype), diagonal=-1)
    return (w / w.sum(1, keepdim=True).clamp(min=1)) @ x


def average_running_sum(x):
    return x.cumsum(dim=1)


def average_wrong_axis(x):
    """Averages over the channels instead of the positions."""
    return x.cumsum(dim=2) / torch.arange(1, x.shape[2] + 1, dtype=x.dtype)


# ------------------------------------------------------------------- attention


def _attention(x, wq, wk, wv, n_head, *, scale="head", diagonal=1, softmax_dim=-1, split="heads-first",
               dropout=None):
    B, T, C = x.shape
    d = wq.shape[0] // n_head

    def heads(w):
        y = x @ w.T
        if split == "heads-first":
            return y.view(B, T, n_head, d).transpose(1, 2)
        return y.view(B, T, d, n_head).permute(0, 3, 1, 2)  # the columns of C read in the wrong order

    q, k, v = heads(wq), heads(wk), heads(wv)
    s = q @ k.transpose(-2, -1) * {"head": d**-0.5, "embd": C**-0.5, "none": 1.0, "d": 1 / d}[scale]
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(diagonal), float("-inf"))
    w = s.softmax(dim=softmax_dim)
    if dropout is not None:
        w = dropout(w)
    y = w @ v  # (B, h, T, d)
    if split == "heads-first":
        return y.transpose(1, 2).reshape(B, T, n_head * d)
    return y.permute(0, 2, 3, 1).reshape(B, T, n_head * d)


def _head(**kw):
    def head(x, w_query, w_key, w_value, dropout=None):
        return _attention(x, w_query, w_key, w_value, 1, dropout=dropout, **kw)

    return head


def _mha(**kw):
    def mha(x, w_query, w_key, w_value, n_head, dropout=None):
        return _attention(x, w_query, w_key, w_value, n_head, dropout=dropout, **kw)

    return mha


def _named(f, name):
    f.__name__ = name
    return f


head_right = _named(_head(), "head_right")
head_scaled_by_n_embd = _named(_head(scale="embd"), "head_scaled_by_n_embd")
head_not_scaled = _named(_head(scale="none"), "head_not_scaled")
head_scaled_by_d = _named(_head(scale="d"), "head_scaled_by_d")
head_mask_sees_next = _named(_head(diagonal=2), "head_mask_sees_next")  # mask shifted by one, one way
head_mask_hides_self = _named(_head(diagonal=0), "head_mask_hides_self")  # and the other way
head_no_mask = _named(_head(diagonal=10**6), "head_no_mask")
head_softmax_over_queries = _named(_head(softmax_dim=-2), "head_softmax_over_queries")


def head_dropout_on_output(x, w_query, w_key, w_value, dropout=None):
    """Dropout after the weighted sum instead of on the attention weights."""
    y = _attention(x, w_query, w_key, w_value, 1)
    return dropout(y) if dropout is not None else y


def head_mask_zero_not_inf(x, w_query, w_key, w_value, dropout=None):
    """Future scores set to 0 instead of -inf: they still get weight."""
    T = x.shape[1]
    s = (x @ w_query.T) @ (x @ w_key.T).transpose(-2, -1) / math.sqrt(w_query.shape[0])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), 0.0)
    return s.softmax(-1) @ (x @ w_value.T)


mha_right = _named(_mha(), "mha_right")
mha_scaled_by_n_embd = _named(_mha(scale="embd"), "mha_scaled_by_n_embd")
mha_mask_sees_next = _named(_mha(diagonal=2), "mha_mask_sees_next")
mha_softmax_over_queries = _named(_mha(softmax_dim=-2), "mha_softmax_over_queries")
mha_wrong_head_split = _named(_mha(split="channels-first"), "mha_wrong_head_split")
mha_no_mask = _named(_mha(diagonal=10**6), "mha_no_mask")


def head_detached_output(x, w_query, w_key, w_value, dropout=None):
    """Right values, but the output is cut from autograd: nothing before it can be trained."""
    return head_right(x, w_query, w_key, w_value, dropout).detach()


def head_detached_scores(x, w_query, w_key, w_value, dropout=None):
    """The scores are detached: no gradient reaches the queries and keys."""
    T = x.shape[1]
    s = ((x @ w_query.T) @ (x @ w_key.T).transpose(-2, -1) / math.sqrt(w_query.shape[0])).detach()
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    w = s.softmax(-1)
    if dropout is not None:
        w = dropout(w)
    return w @ (x @ w_value.T)


def mha_one_big_head(x, w_query, w_key, w_value, n_head, dropout=None):
    """Ignores n_head: one head of size C."""
    return _attention(x, w_query, w_key, w_value, 1, dropout=dropout)


def mha_heads_summed(x, w_query, w_key, w_value, n_head, dropout=None):
    """Sums the heads instead of concatenating them (and tiles to keep the shape)."""
    B, T, C = x.shape
    d = C // n_head
    y = _attention(x, w_query, w_key, w_value, n_head).view(B, T, n_head, d).sum(2)
    return y.repeat(1, 1, n_head)


def mha_detached_values(x, w_query, w_key, w_value, n_head, dropout=None):
    """The values are computed from x.detach(): no gradient reaches x through them."""
    B, T, C = x.shape
    d = C // n_head

    def heads(inp, w):
        return (inp @ w.T).view(B, T, n_head, d).transpose(1, 2)

    q, k, v = heads(x, w_query), heads(x, w_key), heads(x.detach(), w_value)
    s = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1),
                                                           float("-inf"))
    w = s.softmax(-1)
    if dropout is not None:
        w = dropout(w)
    return (w @ v).transpose(1, 2).reshape(B, T, C)


# ------------------------------------------------------------------- LayerNorm


def ln_right(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def ln_unbiased_variance(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) + bias


def ln_over_batch(x, weight, bias, eps=1e-5):
    """Normalises over dim 0 (BatchNorm's axis), not over the features."""
    mean = x.mean(0, keepdim=True)
    var = x.var(0, keepdim=True, unbiased=False)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def ln_over_all(x, weight, bias, eps=1e-5):
    """One mean and variance for the whole tensor."""
    return weight * (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) + bias


def ln_no_affine(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps)


def ln_eps_outside(x, weight, bias, eps=1e-5):
    """eps added to the standard deviation, not to the variance."""
    mean = x.mean(-1, keepdim=True)
    return weight * (x - mean) / (x.std(-1, keepdim=True, unbiased=False) + eps) + bias


def ln_std_not_var(x, weight, bias, eps=1e-5):
    """Divides by the variance instead of the standard deviation."""
    mean = x.mean(-1, keepdim=True)
    return weight * (x - mean) / (x.var(-1, keepdim=True, unbiased=False) + eps) + bias


def ln_detached_stats(x, weight, bias, eps=1e-5):
    """Mean and variance detached: right values, wrong gradient with respect to x."""
    mean = x.mean(-1, keepdim=True).detach()
    var = x.var(-1, keepdim=True, unbiased=False).detach()
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def ln_no_keepdim(x, weight, bias, eps=1e-5):
    """Mean and variance without keepdim: (..., C) - (...,) broadcasts against the wrong axis
    (silently when the sizes happen to allow it, e.g. T == C)."""
    mean = x.mean(-1)
    var = x.var(-1, unbiased=False)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


# ----------------------------------------------------------------------- block


def block_right(block, x):
    x = x + block.attn(block.ln1(x))
    return x + block.mlp(block.ln2(x))


def block_no_attention_residual(block, x):
    x = block.attn(block.ln1(x))
    return x + block.mlp(block.ln2(x))


def block_no_mlp_residual(block, x):
    x = x + block.attn(block.ln1(x))
    return block.mlp(block.ln2(x))


def block_no_residuals(block, x):
    return block.mlp(block.ln2(block.attn(block.ln1(x))))


def block_post_norm(block, x):
    x = block.ln1(x + block.attn(x))
    return block.ln2(x + block.mlp(x))


def block_same_layernorm_twice(block, x):
    x = x + block.attn(block.ln1(x))
    return x + block.mlp(block.ln1(x))


def block_parallel_branches(block, x):
    """Both branches read the block's input (GPT-J style), not the sequential GPT-2 block."""
    return x + block.attn(block.ln1(x)) + block.mlp(block.ln2(x))


def block_no_layernorm(block, x):
    x = x + block.attn(x)
    return x + block.mlp(x)


def block_detached_attention_branch(block, x):
    """Same values, but the attention branch is cut from autograd: attention never trains."""
    x = x + block.attn(block.ln1(x)).detach()
    return x + block.mlp(block.ln2(x))


def block_detached_mlp_branch(block, x):
    x = x + block.attn(block.ln1(x))
    return x + block.mlp(block.ln2(x)).detach()


def block_detached_residual(block, x):
    """The residual path is detached: the gradient reaches x only through the branches."""
    x = x.detach() + block.attn(block.ln1(x))
    return x.detach() + block.mlp(block.ln2(x))


# ----------------------------------------------------------------- GPT forward


def forward_right(model, idx, targets=None):
    B, T = idx.shape
    x = model.drop(model.tok_emb(idx) + model.pos_emb(torch.arange(T)))
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_no_positions(model, idx, targets=None):
    B, T = idx.shape
    x = model.tok_emb(idx)
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_no_final_layernorm(model, idx, targets=None):
    B, T = idx.shape
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(x)
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_all_positions(model, idx, targets=None):
    """Adds every position embedding (block_size of them), not the first T."""
    B, T = idx.shape
    x = model.tok_emb(idx) + model.pos_emb.weight.sum(0)
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_loss_transposed(model, idx, targets=None):
    """Targets flattened in the other order (targets.T): each logit row meets the wrong target."""
    logits, _ = forward_right(model, idx)
    B, T, V = logits.shape
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, V), targets.T.reshape(B * T))
    return logits, loss


def forward_loss_summed(model, idx, targets=None):
    logits, _ = forward_right(model, idx)
    B, T, V = logits.shape
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, V), targets.view(B * T), reduction="sum")
    return logits, loss


def forward_loss_item(model, idx, targets=None):
    logits, loss = forward_right(model, idx, targets)
    return logits, None if loss is None else torch.tensor(loss.item())


def forward_last_position_only(model, idx, targets=None):
    """Logits of the last position only, as when sampling."""
    logits, _ = forward_right(model, idx)
    logits = logits[:, -1:, :]
    loss = None if targets is None else F.cross_entropy(logits[:, -1], targets[:, -1])
    return logits, loss


def forward_no_dropout(model, idx, targets=None):
    """Skips the embedding dropout: right in eval mode only."""
    B, T = idx.shape
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_dropout_on_tokens_only(model, idx, targets=None):
    """Drops from the token embeddings only, then adds the position embeddings."""
    B, T = idx.shape
    x = model.drop(model.tok_emb(idx)) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


def forward_hidden_with_targets(model, idx, targets=None):
    """With targets, returns the hidden state (B, T, C) in place of the logits."""
    B, T = idx.shape
    x = model.drop(model.tok_emb(idx) + model.pos_emb(torch.arange(T)))
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    if targets is None:
        return logits, None
    return x, F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))


def forward_loss_first_with_targets(model, idx, targets=None):
    """With targets, returns (loss, logits)."""
    logits, loss = forward_right(model, idx, targets)
    return (logits, None) if targets is None else (loss, logits)


def forward_detached_embeddings(model, idx, targets=None):
    """The embeddings are detached: the loss is right, but tok_emb and pos_emb never train."""
    B, T = idx.shape
    x = model.drop(model.tok_emb(idx) + model.pos_emb(torch.arange(T))).detach()
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
    return logits, loss


# A compact GPT built on the right functions above, for the model-level checks:
# parameter count, causality, initial loss and overfitting.


@dataclass
class Config:
    vocab_size: int = 65
    block_size: int = 8
    n_embd: int = 16
    n_head: int = 2
    n_layer: int = 2
    dropout: float = 0.0


class _LN(nn.Module):
    def __init__(self, C, layer_norm=ln_right):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(C)), nn.Parameter(torch.zeros(C))
        self.layer_norm = layer_norm

    def forward(self, x):
        return self.layer_norm(x, self.weight, self.bias)


class _Attn(nn.Module):
    def __init__(self, c, attention):
        super().__init__()
        C = c.n_embd
        self.n_head, self.attention = c.n_head, attention
        self.query, self.key, self.value = (nn.Linear(C, C, bias=False) for _ in range(3))
        self.proj = nn.Linear(C, C)

    def forward(self, x):
        return self.proj(self.attention(x, self.query.weight, self.key.weight, self.value.weight, self.n_head))


class _Block(nn.Module):
    def __init__(self, c, attention, layer_norm=ln_right):
        super().__init__()
        self.ln1, self.attn, self.ln2 = _LN(c.n_embd, layer_norm), _Attn(c, attention), _LN(c.n_embd, layer_norm)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(), nn.Linear(4 * c.n_embd, c.n_embd))

    def forward(self, x):
        return block_right(self, x)


def make_gpt(attention=mha_right, init=True, lm_head_bias=True, forward=forward_right, layer_norm=ln_right):
    class GPT(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.config = c
            self.tok_emb, self.pos_emb = nn.Embedding(c.vocab_size, c.n_embd), nn.Embedding(c.block_size, c.n_embd)
            self.drop = nn.Dropout(c.dropout)
            self.blocks = nn.ModuleList(_Block(c, attention, layer_norm) for _ in range(c.n_layer))
            self.ln_f = _LN(c.n_embd, layer_norm)
            self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=lm_head_bias)
            if init:
                for m in self.modules():
                    if isinstance(m, (nn.Linear, nn.Embedding)):
                        nn.init.normal_(m.weight, std=0.02)
                    if isinstance(m, nn.Linear) and m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, idx, targets=None):
            return forward(self, idx, targets)

    return GPT


gpt_right = make_gpt()
gpt_default_init = make_gpt(init=False)  # PyTorch's default init: initial loss well above ln V
gpt_not_causal = make_gpt(attention=mha_no_mask)
gpt_no_head_bias = make_gpt(lm_head_bias=False)  # V parameters fewer than the formula


class _DetachedBlock(_Block):
    def forward(self, x):
        return block_detached_attention_branch(self, x)


def gpt_with_detached_attention():
    """Every block's attention branch is detached: the loss is right, attention never trains."""
    base = make_gpt()

    class Detached(base):
        def __init__(self, c):
            super().__init__(c)
            for block in self.blocks:
                block.__class__ = _DetachedBlock

    return Detached


def gpt_with_tied_embeddings():
    """Weight tying (lm_head shares tok_emb's matrix): not the lesson's parameter count."""
    base = make_gpt()

    class Tied(base):
        def __init__(self, c):
            super().__init__(c)
            self.lm_head.weight = self.tok_emb.weight

    return Tied


# ------------------------------------------------------------------ generation


def _sample_step(model, idx, generator, temperature, top_k):
    logits = model(idx[:, -model.config.block_size:])[0][:, -1, :] / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)


def generate_right(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    was = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            idx = torch.cat([idx, _sample_step(model, idx, generator, temperature, top_k)], dim=1)
    model.train(was)
    return idx


def generate_no_crop(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx)[0][:, -1] / temperature
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return idx


def generate_crop_left_end(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Keeps the first block_size tokens instead of the last ones."""
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, : model.config.block_size])[0][:, -1] / temperature
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return idx


def generate_first_position(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Samples from the logits of position 0, not the last position."""
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, 0] / temperature
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return idx


def generate_global_rng(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1] / temperature
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1)], dim=1)
    return idx


def generate_greedy(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1]
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
    return idx


def generate_temperature_multiplied(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1] * temperature
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return idx


def generate_ignores_top_k(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    return generate_right(model, idx, max_new_tokens, generator, temperature, None)


def generate_stays_in_train_mode(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    with torch.no_grad():
        for _ in range(max_new_tokens):
            idx = torch.cat([idx, _sample_step(model, idx, generator, temperature, top_k)], dim=1)
    return idx


def generate_leaves_eval_mode(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            idx = torch.cat([idx, _sample_step(model, idx, generator, temperature, top_k)], dim=1)
    return idx


def generate_ends_in_train_mode(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Always model.train() at the end: a model that came in eval mode leaves in training mode."""
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            idx = torch.cat([idx, _sample_step(model, idx, generator, temperature, top_k)], dim=1)
    model.train()
    return idx


def generate_with_gradients(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """No torch.no_grad(): every model call builds a graph (the tokens are the same)."""
    was = model.training
    model.eval()
    for _ in range(max_new_tokens):
        idx = torch.cat([idx, _sample_step(model, idx, generator, temperature, top_k)], dim=1)
    model.train(was)
    return idx


def generate_in_place(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Writes the new tokens over the context (a fixed buffer) instead of appending."""
    out = generate_right(model, idx, max_new_tokens, generator, temperature, top_k)
    idx[:] = out[:, -idx.shape[1]:]
    return out


def generate_top_k_unclamped(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """torch.topk(logits, top_k) without min(top_k, V): raises when top_k exceeds the vocabulary."""
    was = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1, :] / temperature
            if top_k is not None:
                logits = logits.masked_fill(logits < logits.topk(top_k, dim=-1).values[:, [-1]], float("-inf"))
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    model.train(was)
    return idx


# ----------------------------------------------------------------------- table

RIGHT = {
    "causal_average": average_right,
    "attention_head": head_right,
    "multi_head_attention": mha_right,
    "layer_norm": ln_right,
    "transformer_block": block_right,
    "gpt_forward": forward_right,
    "generate": generate_right,
}

WRONG = {
    "causal_average": [average_whole_sequence, average_excludes_self, average_running_sum, average_wrong_axis],
    "attention_head": [head_scaled_by_n_embd, head_not_scaled, head_scaled_by_d, head_mask_sees_next,
                       head_mask_hides_self, head_no_mask, head_softmax_over_queries, head_dropout_on_output,
                       head_mask_zero_not_inf, head_detached_output, head_detached_scores],
    "multi_head_attention": [mha_scaled_by_n_embd, mha_mask_sees_next, mha_softmax_over_queries,
                             mha_wrong_head_split, mha_no_mask, mha_one_big_head, mha_heads_summed,
                             mha_detached_values],
    "layer_norm": [ln_unbiased_variance, ln_over_batch, ln_over_all, ln_no_affine, ln_eps_outside, ln_std_not_var,
                   ln_detached_stats, ln_no_keepdim],
    "transformer_block": [block_no_attention_residual, block_no_mlp_residual, block_no_residuals, block_post_norm,
                          block_same_layernorm_twice, block_parallel_branches, block_no_layernorm,
                          block_detached_attention_branch, block_detached_mlp_branch, block_detached_residual],
    "gpt_forward": [forward_no_positions, forward_no_final_layernorm, forward_all_positions, forward_loss_transposed,
                    forward_loss_summed, forward_loss_item, forward_last_position_only, forward_no_dropout,
                    forward_dropout_on_tokens_only, forward_hidden_with_targets, forward_loss_first_with_targets,
                    forward_detached_embeddings],
    "generate": [generate_no_crop, generate_crop_left_end, generate_first_position, generate_global_rng,
                 generate_greedy, generate_temperature_multiplied, generate_ignores_top_k,
                 generate_stays_in_train_mode, generate_leaves_eval_mode, generate_ends_in_train_mode,
                 generate_with_gradients, generate_in_place, generate_top_k_unclamped],
}

# Whole models with one flaw, graded by the model-level part of the gpt_forward check.
WRONG_MODELS = {
    "default_init": gpt_default_init,
    "not_causal": gpt_not_causal,
    "no_head_bias": gpt_no_head_bias,
    "tied_embeddings": gpt_with_tied_embeddings(),
    "detached_attention": gpt_with_detached_attention(),
}


# ---------------------------------------------------- other right answers

def mha_loop_over_heads(x, w_query, w_key, w_value, n_head, dropout=None):
    """Right: one attention_head per head, in a loop, outputs concatenated."""
    d = x.shape[-1] // n_head
    rows = [slice(i * d, (i + 1) * d) for i in range(n_head)]
    return torch.cat([head_right(x, w_query[r], w_key[r], w_value[r], dropout) for r in rows], dim=-1)


def head_with_sdpa_weights(x, w_query, w_key, w_value, dropout=None):
    """Right: the weights built with tril and a float mask, in float64 internally."""
    T, d = x.shape[1], w_query.shape[0]
    q, k, v = (x.double() @ w.double().T for w in (w_query, w_key, w_value))
    s = q @ k.transpose(-2, -1) * d**-0.5 + torch.zeros(T, T, dtype=torch.float64).masked_fill(
        torch.tril(torch.ones(T, T)) == 0, float("-inf"))
    w = torch.softmax(s, dim=-1)
    if dropout is not None:
        w = dropout(w)
    return (w @ v).to(x.dtype)


def average_loop(x):
    """Right: the plain loop."""
    out = torch.zeros_like(x)
    for t in range(x.shape[1]):
        out[:, t] = x[:, : t + 1].mean(dim=1)
    return out


def ln_rsqrt(x, weight, bias, eps=1e-5):
    """Right: torch.var(correction=0) and rsqrt."""
    return (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, keepdim=True, correction=0) + eps) * weight + bias


def generate_row_by_row(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Right: samples each row separately, top-k by sorting."""
    was = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1, :] * (1.0 / temperature)
            if top_k is not None:
                k = min(top_k, logits.shape[-1])
                cut = logits.sort(dim=-1, descending=True).values[:, k - 1 : k]
                logits = torch.where(logits < cut, torch.full_like(logits, float("-inf")), logits)
            probs = F.softmax(logits, dim=-1)
            nxt = torch.stack([torch.multinomial(p, 1, generator=generator) for p in probs])
            idx = torch.cat([idx, nxt], dim=1)
    model.train(was)
    return idx


def generate_top_k_skipped_when_large(model, idx, max_new_tokens, generator, temperature=1.0, top_k=None):
    """Right: top-k applied only when it removes something (top_k < V)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1, :] / temperature
            if top_k is not None and top_k < logits.shape[-1]:
                logits[logits < logits.topk(top_k, dim=-1).values[:, -1:]] = float("-inf")
            idx = torch.cat([idx, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    model.train(was)
    return idx


def forward_functional_dropout(model, idx, targets=None):
    """Right: F.dropout with the module's p and the model's mode, positions from pos_emb.weight."""
    B, T = idx.shape
    x = F.dropout(model.tok_emb(idx) + model.pos_emb.weight[:T], model.drop.p, model.training)
    for block in model.blocks:
        x = block(x)
    logits = model.lm_head(model.ln_f(x))
    if targets is None:
        return logits, None
    return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def block_named_steps(block, x):
    """Right: the same block, written with intermediate names."""
    a = block.attn(block.ln1(x))
    h = x + a
    m = block.mlp(block.ln2(h))
    return h + m


def ln_float64(x, weight, bias, eps=1e-5):
    """Right: computed in float64, returned in x's dtype."""
    xd = x.double()
    mean = xd.mean(-1, keepdim=True)
    var = ((xd - mean) ** 2).mean(-1, keepdim=True)
    return (weight.double() * (xd - mean) / (var + eps).sqrt() + bias.double()).to(x.dtype)


OTHER_RIGHT = {
    "causal_average": [average_loop],
    "attention_head": [head_with_sdpa_weights],
    "multi_head_attention": [mha_loop_over_heads],
    "layer_norm": [ln_rsqrt, ln_float64],
    "transformer_block": [block_named_steps],
    "gpt_forward": [forward_functional_dropout],
    "generate": [generate_row_by_row, generate_top_k_skipped_when_large],
}
