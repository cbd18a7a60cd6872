"""Checks of lesson 06 (GPT), one function per exercise.

The oracles are PyTorch's own: F.scaled_dot_product_attention(is_causal=True)
for attention, nn.LayerNorm (values and gradients) for LayerNorm, built-in
modules for the block and the model, and exact formulas (ln V, the parameter
count). Causality is checked as a property over random shapes with
hypothesis: changing the input after position t never changes the output at
positions <= t. No check trains more than a few dozen steps of a tiny model.
"""

import functools
import math
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.assertions import CheckFailure, assert_close, assert_scalar, expect, fail

# Few examples, no deadline (slow but correct code must pass), same examples every run.
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _one_thread(check):
    """Run a check on one thread: its tensors are tiny, and on a busy machine a second thread
    only adds waiting (measured: several times slower). The caller's setting is restored."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _tensor(what, value):
    expect(isinstance(value, torch.Tensor), what, f"expected a torch.Tensor, got {type(value).__name__}")
    return value


def _causal_property(what, f, max_c=8, hint=None):
    """f(x) for x of shape (B, T, C) must not let positions > t change outputs <= t."""
    failures = []

    @PROPERTY
    @given(st.integers(1, 3), st.integers(2, 9), st.integers(1, max_c), st.data())
    def prop(B, T, c, data):
        t = data.draw(st.integers(0, T - 2), label="t")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        g = _gen(seed)
        x = torch.randn(B, T, c, generator=g, dtype=torch.float64)
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(B, T - t - 1, c, generator=g, dtype=torch.float64) * 3
        y, y2 = f(x), f(x2)
        if not torch.allclose(y[:, : t + 1], y2[:, : t + 1], rtol=1e-9, atol=1e-9):
            failures.append((B, T, c, t))
            raise AssertionError

    try:
        prop()
    except AssertionError:
        B, T, c, t = failures[-1] if failures else ("?",) * 4
        fail(what, f"not causal: with x of shape (B, T, C) = ({B}, {T}, {c}), changing positions > {t} "
                   f"changed the output at positions <= {t}", hint)


# ----------------------------------------------------------------------------- 1


@_one_thread
def causal_average(causal_average, seed=0):
    what = "causal_average(x)"
    g = _gen(seed)
    for B, T, C in ((1, 1, 1), (2, 5, 3), (3, 7, 4)):
        x = torch.randn(B, T, C, generator=g)
        expected = torch.stack([x[:, : t + 1].double().mean(dim=1) for t in range(T)], dim=1)
        out = _tensor(what, causal_average(x.clone()))
        hint = "out[b, t] = mean of x[b, 0..t]: positions up to and including t, divided by t + 1"
        if out.shape == x.shape:
            if torch.allclose(out.double(), x.double().mean(dim=1, keepdim=True).expand_as(x), atol=1e-5) and T > 1:
                hint = "every position averages the whole sequence: the future must be masked out"
            elif T > 1 and torch.allclose(out.double(), x.double().cumsum(dim=1), atol=1e-5):
                hint = "that is the running sum: divide by the number of positions averaged (t + 1)"
        assert_close(f"{what} for x of shape {(B, T, C)}", out, expected, rtol=1e-5, atol=1e-6, hint=hint)


# ----------------------------------------------------------------------------- 2


def _reference_heads(x, wq, wk, wv, n_head):
    """Causal attention of n_head heads by PyTorch, heads concatenated: (B, T, C)."""
    B, T, C = x.shape
    d = wq.shape[0] // n_head

    def split(w):
        return (x @ w.T).view(B, T, n_head, d).transpose(1, 2)

    y = F.scaled_dot_product_attention(split(wq), split(wk), split(wv), is_causal=True)
    return y.transpose(1, 2).reshape(B, T, n_head * d)


def _attention_hint(out, x, wq, wk, wv, n_head):
    """Name the classic mistake when the output matches it."""
    B, T, C = x.shape
    d = wq.shape[0] // n_head

    def variant(scale=None, diagonal=1, dim=-1):
        q, k, v = ((x @ w.T).view(B, T, n_head, d).transpose(1, 2) for w in (wq, wk, wv))
        s = q @ k.transpose(-2, -1) * (scale if scale is not None else d**-0.5)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(diagonal), float("-inf"))
        return (s.softmax(dim) @ v).transpose(1, 2).reshape(B, T, n_head * d)

    candidates = [
        (variant(scale=C**-0.5), "the scores are scaled by 1/sqrt(C), the embedding size: scale by "
                                 "1/sqrt(head size), the size of q and k"),
        (variant(scale=1.0), "the scores are not scaled: divide q @ k^T by sqrt(head size)"),
        (variant(scale=1 / d), "the scores are divided by the head size: divide by its square root"),
        (variant(diagonal=2), "the mask lets each position see the next one: mask positions s > t, i.e. "
                              "triu(diagonal=1)"),
        (variant(diagonal=0), "the mask hides each position from itself: position t may attend to s <= t"),
        (variant(dim=-2), "the softmax runs over the query dimension: it must normalise each row "
                          "(over the keys, the last dimension)"),
        (variant(diagonal=T + 1), "there is no causal mask: the future is visible"),
    ]
    for candidate, hint in candidates:
        if out.shape == candidate.shape and torch.allclose(out.double(), candidate.double(), atol=1e-5, equal_nan=True):
            return hint
    return None


def _dropout_on_weights(what, call, weights_shape, out_shape):
    """The dropout module is applied once, to the attention weights (after the softmax)."""
    seen = []

    def spy(w):
        seen.append(tuple(w.shape))
        return torch.zeros_like(w)

    out = call(spy)
    hint = "apply dropout to the attention weights, after the softmax and before the product with v"
    # Any layout of the weights will do: all heads at once or one call per head, with or without a head
    # dimension; but only attention weights (..., T, T), and each of them once.
    right = (bool(seen) and all(shape[-2:] == weights_shape[-2:] for shape in seen)
             and sum(math.prod(shape) for shape in seen) == math.prod(weights_shape))
    expect(right, what, f"the dropout module was applied to tensors of shapes {seen}, expected to the "
                        f"attention weights of shape {weights_shape} (once each)", hint)
    assert_close(f"{what} with a dropout that zeroes the weights", out, torch.zeros(out_shape), atol=1e-7, hint=hint)


@_one_thread
def attention_head(attention_head, seed=0):
    what = "attention_head(x, w_query, w_key, w_value)"
    g = _gen(seed)
    for B, T, C, d in ((2, 6, 12, 4), (1, 1, 8, 8), (3, 9, 10, 6)):
        x = torch.randn(B, T, C, generator=g)
        # Scores of order one, so that attention is neither uniform nor one-hot.
        wq, wk, wv = (torch.randn(d, C, generator=g) * 0.6 for _ in range(3))
        expected = _reference_heads(x.double(), wq.double(), wk.double(), wv.double(), 1)
        out = _tensor(what, attention_head(x, wq, wk, wv))
        hint = _attention_hint(out, x.double(), wq.double(), wk.double(), wv.double(), 1)
        assert_close(f"{what} with (B, T, C) = {(B, T, C)}, head size {d}", out, expected,
                     rtol=1e-4, atol=1e-5, hint=hint or "compare with softmax(q k^T / sqrt(d), future masked) @ v")
    _dropout_on_weights(what, lambda dropout: attention_head(x, wq, wk, wv, dropout=dropout), (B, T, T),
                        (B, T, d))
    out = attention_head(x, wq, wk, wv, dropout=nn.Dropout(0.5).eval())
    assert_close(f"{what} with nn.Dropout(0.5) in eval mode", out, expected, rtol=1e-4, atol=1e-5)
    _causal_property(what, lambda x: attention_head(x, *(torch.randn(3, x.shape[-1], generator=_gen(1),
                                                                    dtype=x.dtype) for _ in range(3))),
                     hint="mask the scores of positions s > t with -inf before the softmax")
    # The mask is built for the actual T, however long.
    x = torch.randn(1, 40, 4, generator=g)
    out = attention_head(x, *(torch.randn(2, 4, generator=g) for _ in range(3)))
    expect(tuple(out.shape) == (1, 40, 2), what, f"for T = 40 the output has shape {tuple(out.shape)}")


# ----------------------------------------------------------------------------- 3


@_one_thread
def multi_head_attention(multi_head_attention, seed=0):
    what = "multi_head_attention(x, w_query, w_key, w_value, n_head)"
    g = _gen(seed)
    for B, T, C, h in ((2, 5, 12, 3), (1, 7, 8, 2), (2, 4, 6, 1), (1, 3, 16, 4)):
        x = torch.randn(B, T, C, generator=g)
        wq, wk, wv = (torch.randn(C, C, generator=g) * 0.5 for _ in range(3))
        expected = _reference_heads(x.double(), wq.double(), wk.double(), wv.double(), h)
        out = _tensor(what, multi_head_attention(x, wq, wk, wv, h))
        hint = _attention_hint(out, x.double(), wq.double(), wk.double(), wv.double(), h)
        if hint is None and h > 1 and out.shape == expected.shape:
            d = C // h
            perm = torch.arange(C).view(d, h).T.reshape(C)  # head i, element j at column j*h + i
            wrong = _reference_heads(x.double(), wq.double()[perm], wk.double()[perm], wv.double()[perm], h)
            if torch.allclose(out.double(), wrong[..., perm.argsort()], atol=1e-5):
                hint = ("head i owns rows i*d..(i+1)*d-1 of each weight: split C as view(B, T, n_head, d), "
                        "then transpose(1, 2); put the outputs back in the same order")
        assert_close(f"{what} with (B, T, C) = {(B, T, C)}, n_head = {h}", out, expected, rtol=1e-4, atol=1e-5,
                     hint=hint or "each head is attention_head with its own rows of the weights; "
                                  "concatenate the heads' outputs along the last dimension")
    out = multi_head_attention(x, wq, wk, wv, h, dropout=nn.Dropout(0.5).eval())
    assert_close(f"{what} with nn.Dropout(0.5) in eval mode", out, expected, rtol=1e-4, atol=1e-5)
    _dropout_on_weights(what, lambda dropout: multi_head_attention(x, wq, wk, wv, h, dropout=dropout),
                        (B, h, T, T), (B, T, C))

    def f(x):
        C = x.shape[-1] * 2
        x = torch.cat([x, x.flip(-1)], dim=-1)  # C even, for 2 heads
        w = [torch.randn(C, C, generator=_gen(2), dtype=x.dtype) for _ in range(3)]
        return multi_head_attention(x, *w, 2)

    _causal_property(what, f, hint="mask the scores of positions s > t with -inf before the softmax")


# ----------------------------------------------------------------------------- 4


@_one_thread
def layer_norm(layer_norm, seed=0):
    what = "layer_norm(x, weight, bias, eps)"
    g = _gen(seed)
    for shape in ((4, 10), (2, 5, 7), (3, 1, 6)):
        C = shape[-1]
        x = (torch.randn(*shape, generator=g) * 3 + torch.randn(shape[-1], generator=g)).requires_grad_()
        ref = nn.LayerNorm(C, eps=1e-5)
        with torch.no_grad():
            ref.weight.copy_(torch.randn(C, generator=g))
            ref.bias.copy_(torch.randn(C, generator=g))
        weight = ref.weight.detach().clone().requires_grad_()
        bias = ref.bias.detach().clone().requires_grad_()
        xr = x.detach().clone().requires_grad_()
        out = _tensor(what, layer_norm(x, weight, bias, 1e-5))
        expected = ref(xr)
        hint = "normalise over the last dimension (dim=-1, keepdim=True), with the biased variance"
        if out.shape == expected.shape:
            xd = x.detach().double()
            unbiased = (xd - xd.mean(-1, keepdim=True)) / torch.sqrt(xd.var(-1, keepdim=True, unbiased=True) + 1e-5)
            unbiased = unbiased * weight.detach().double() + bias.detach().double()
            if torch.allclose(out.detach().double(), unbiased, atol=1e-5):
                hint = "the variance is the unbiased one (divides by C - 1): LayerNorm divides by C (unbiased=False)"
            elif torch.allclose(out.detach().double(), F.layer_norm(xd, (C,)), atol=1e-5):
                hint = "weight and bias are ignored: return weight * normalised + bias"
        assert_close(f"{what} values for x of shape {shape}", out, expected, rtol=1e-4, atol=1e-5, hint=hint)
        expect(out.requires_grad, what, "the output does not depend on x, weight and bias through autograd",
               hint="compute with differentiable torch operations (no .detach(), .item() or .data)")
        g_out = torch.randn(shape, generator=g)
        out.backward(g_out)
        expected.backward(g_out)
        for name, got, exp in (("x", x.grad, xr.grad), ("weight", weight.grad, ref.weight.grad),
                               ("bias", bias.grad, ref.bias.grad)):
            expect(got is not None, f"{what} gradient", f"no gradient reached {name}",
                   hint="compute with differentiable torch operations (no .detach(), .item() or .data)")
            assert_close(f"{what} gradient with respect to {name}, x of shape {shape}", got, exp,
                         rtol=1e-4, atol=1e-5, hint=hint)
    # eps goes inside the square root: visible on a constant row.
    x = torch.full((1, 4), 2.0)
    out = layer_norm(x, torch.ones(4), torch.zeros(4), 0.25)
    assert_close(f"{what} of a constant vector with eps=0.25", out, torch.zeros(1, 4), atol=1e-6,
                 hint="(x - mean) / sqrt(var + eps)")
    x = torch.tensor([[1.0, 3.0]])
    out = layer_norm(x, torch.ones(2), torch.zeros(2), 3.0)
    assert_close(f"{what} of [1, 3] with eps=3", out, torch.tensor([[-0.5, 0.5]]), atol=1e-6,
                 hint="eps is added to the variance inside the square root: (x - mean) / sqrt(var + eps)")


# ----------------------------------------------------------------------------- 5


class _SDPAttention(nn.Module):
    """Causal multi-head attention by PyTorch, with an output projection."""

    def __init__(self, C, n_head, g):
        super().__init__()
        self.n_head = n_head
        self.w = nn.Parameter(torch.randn(3, C, C, generator=g) * 0.4)
        self.proj = nn.Linear(C, C)

    def forward(self, x):
        return self.proj(_reference_heads(x, self.w[0], self.w[1], self.w[2], self.n_head))


def _reference_block(C, n_head, g):
    block = nn.Module()
    block.ln1, block.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
    block.attn = _SDPAttention(C, n_head, g)
    block.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for ln in (block.ln1, block.ln2):  # gains around 1, different in ln1 and ln2
            ln.weight.add_(1.0)
    return block


@_one_thread
def transformer_block(transformer_block, seed=0):
    what = "transformer_block(block, x)"
    g = _gen(seed)
    for B, T, C, h in ((2, 5, 8, 2), (1, 6, 12, 3)):
        block = _reference_block(C, h, g).double()
        x = torch.randn(B, T, C, generator=g, dtype=torch.float64)
        out = _tensor(what, transformer_block(block, x.clone()))
        with torch.no_grad():
            h1 = x + block.attn(block.ln1(x))
            expected = h1 + block.mlp(block.ln2(h1))
            wrong = {
                "the attention branch has no residual: x = x + attn(ln1(x)), not x = attn(ln1(x))":
                    (lambda a: a + block.mlp(block.ln2(a)))(block.attn(block.ln1(x))),
                "the feed-forward branch has no residual: x = x + mlp(ln2(x))":
                    block.mlp(block.ln2(h1)),
                "that is post-norm (LayerNorm after the sum): GPT-2 normalises the input of each branch, "
                "x + attn(ln1(x))": (lambda a: block.ln2(a + block.mlp(a)))(block.ln1(x + block.attn(x))),
                "ln1 and ln2 are swapped: ln1 goes before attention, ln2 before the feed-forward layer":
                    (lambda a: a + block.mlp(block.ln1(a)))(x + block.attn(block.ln2(x))),
                "the feed-forward branch reads the block's input: it must read x after the attention residual":
                    h1 + block.mlp(block.ln2(x)),
            }
        hint = next((m for m, v in wrong.items() if out.shape == v.shape and torch.allclose(out.double(), v, atol=1e-6)),
                    "x = x + block.attn(block.ln1(x)); then x = x + block.mlp(block.ln2(x))")
        assert_close(f"{what} with (B, T, C) = {(B, T, C)}", out, expected, rtol=1e-6, atol=1e-8, hint=hint)


# ----------------------------------------------------------------------------- 6


def _n_params(c):
    C, V, T, L = c.n_embd, c.vocab_size, c.block_size, c.n_layer
    per_block = 3 * C * C + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C) + 2 * (2 * C)
    return V * C + T * C + L * per_block + 2 * C + (C * V + V)


def _container(V, T, C, L, g):
    """A model made of built-in modules, laid out as gpt_forward expects."""
    model = nn.Module()
    model.tok_emb, model.pos_emb = nn.Embedding(V, C), nn.Embedding(T, C)
    model.drop = nn.Dropout(0.5)
    model.blocks = nn.ModuleList(nn.Sequential(nn.Linear(C, C), nn.Tanh()) for _ in range(L))
    model.ln_f = nn.LayerNorm(C)
    model.lm_head = nn.Linear(C, V)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return model.eval()


@_one_thread
def gpt_forward(gpt_forward, GPT=None, GPTConfig=None, seed=0):
    what = "gpt_forward(model, idx, targets)"
    g = _gen(seed)
    for B, T, V, C, block_size, L in ((2, 5, 11, 8, 7, 2), (3, 7, 6, 4, 7, 1), (1, 1, 9, 6, 3, 3)):
        model = _container(V, block_size, C, L, g)
        idx = torch.randint(V, (B, T), generator=g)
        targets = torch.randint(V, (B, T), generator=g)
        with torch.no_grad():
            x = model.tok_emb(idx) + model.pos_emb.weight[:T]
            for block in model.blocks:
                x = block(x)
            expected = model.lm_head(model.ln_f(x))
            no_pos = model.tok_emb(idx)
            for block in model.blocks:
                no_pos = block(no_pos)
            no_pos = model.lm_head(model.ln_f(no_pos))
        result = gpt_forward(model, idx)
        expect(isinstance(result, tuple) and len(result) == 2, what, f"expected (logits, loss), got {type(result).__name__}")
        logits, loss = result
        expect(loss is None, what, f"with targets=None the loss must be None, got {loss!r}")
        logits = _tensor(f"{what} logits", logits)
        hint = "tok_emb(idx) + pos_emb(positions 0..T-1), the blocks in order, ln_f, lm_head"
        if logits.shape == expected.shape and torch.allclose(logits, no_pos, atol=1e-5):
            hint = "the position embeddings are missing: add model.pos_emb(torch.arange(T))"
        assert_close(f"{what} logits with (B, T) = {(B, T)}, V = {V}", logits, expected, rtol=1e-5, atol=1e-5,
                     hint=hint)
        logits, loss = gpt_forward(model, idx, targets)
        expected_loss = F.cross_entropy(expected.view(B * T, V), targets.view(B * T))
        expect(isinstance(loss, torch.Tensor) and loss.dim() == 0, what,
               f"the loss must be a 0-dim tensor, got {getattr(loss, 'shape', type(loss).__name__)}")
        expect(loss.requires_grad, what, "the loss does not depend on the parameters through autograd",
               hint="no .item(), .detach() or torch.no_grad() in the forward pass")
        assert_scalar(f"{what} loss with (B, T) = {(B, T)}", loss, expected_loss.item(), rtol=1e-5, atol=1e-6,
                      hint="F.cross_entropy(logits.view(B*T, V), targets.view(B*T)): mean over all positions")
    if GPT is None:
        return
    _gpt_model_checks(GPT, GPTConfig or SimpleNamespace)


def _config(GPTConfig, **kw):
    try:
        return GPTConfig(**kw)
    except TypeError:
        return SimpleNamespace(**kw)


def _gpt_model_checks(GPT, GPTConfig):
    what = "GPT(config) with your gpt_forward"
    # The parameter count matches the formula for any configuration, and the published baby GPT.
    counts = []

    @PROPERTY
    @given(st.integers(2, 40), st.integers(1, 12), st.integers(1, 4), st.integers(1, 6), st.integers(1, 3))
    def count(V, T, n_head, d, L):
        c = _config(GPTConfig, vocab_size=V, block_size=T, n_embd=n_head * d, n_head=n_head, n_layer=L, dropout=0.0)
        got = sum(p.numel() for p in GPT(c).parameters())
        if got != _n_params(c):
            counts.append((c, got))
            raise AssertionError

    try:
        count()
    except AssertionError:
        c, got = counts[-1]
        fail(what, f"{got:,} parameters for {c}, the formula V*C + T*C + L*(12C^2 + 10C) + 2C + C*V + V "
                   f"gives {_n_params(c):,}")
    # Causality through the whole model: tokens after t never change the logits at <= t.
    failures = []

    @PROPERTY
    @given(st.integers(1, 2), st.integers(2, 8), st.integers(2, 12), st.data())
    def causal(B, T, V, data):
        t = data.draw(st.integers(0, T - 2), label="t")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        torch.manual_seed(seed)
        model = GPT(_config(GPTConfig, vocab_size=V, block_size=8, n_embd=8, n_head=2, n_layer=2, dropout=0.0))
        model.eval()
        g = _gen(seed)
        idx = torch.randint(V, (B, T), generator=g)
        idx2 = idx.clone()
        idx2[:, t + 1:] = (idx2[:, t + 1:] + torch.randint(1, V, (B, T - t - 1), generator=g)) % V
        with torch.no_grad():
            a, b = model(idx)[0], model(idx2)[0]
        if not torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6):
            failures.append((B, T, t))
            raise AssertionError

    try:
        causal()
    except AssertionError:
        B, T, t = failures[-1]
        fail(what, f"not causal: with idx of shape ({B}, {T}), changing tokens after position {t} changed the "
                   f"logits at positions <= {t}", "every attention must mask the future")
    # A fresh model predicts nearly uniformly: loss within 0.1 of ln V.
    torch.manual_seed(0)
    V = 65
    c = _config(GPTConfig, vocab_size=V, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
    model = GPT(c)
    idx = torch.randint(V, (8, 16), generator=_gen(1))
    _, loss = model(idx, torch.randint(V, (8, 16), generator=_gen(2)))
    expect(abs(loss.item() - math.log(V)) < 0.1, what,
           f"a fresh model's loss is {loss.item():.4f}, expected within 0.1 of ln {V} = {math.log(V):.4f}",
           hint="initialise weights from N(0, 0.02) and biases at 0, so the first logits are near 0")
    # Overfit one tiny batch: the whole pipeline (forward, loss, gradients) learns.
    torch.manual_seed(0)
    c = _config(GPTConfig, vocab_size=12, block_size=8, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
    model = GPT(c)
    idx = torch.randint(12, (2, 8), generator=_gen(3))
    targets = torch.randint(12, (2, 8), generator=_gen(4))
    params = [p for p in model.parameters() if p.requires_grad]
    m1, m2 = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for step in range(1, 61):  # Adam by hand: torch.optim's first use imports seconds of machinery
        _, loss = model(idx, targets)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, gr, a, b in zip(params, grads, m1, m2):
                if gr is not None:
                    a.mul_(0.9).add_(gr, alpha=0.1)
                    b.mul_(0.999).addcmul_(gr, gr, value=0.001)
                    p.sub_(1e-2 * (a / (1 - 0.9**step)) / ((b / (1 - 0.999**step)).sqrt() + 1e-8))
    expect(loss.item() < 0.2, what, f"after 60 AdamW steps on one batch of 2x8 random tokens the loss is "
                                    f"{loss.item():.3f}; a working model memorises it (< 0.2)",
           hint="is the loss computed from the logits with gradients flowing to every parameter?")


# ----------------------------------------------------------------------------- 7


class _Scripted(nn.Module):
    """A stand-in model whose next-token logits depend on the last token and the length.

    It refuses contexts longer than block_size and records each context it sees.
    """

    def __init__(self, V, block_size, peaked=False):
        super().__init__()
        self.config = SimpleNamespace(block_size=block_size, vocab_size=V)
        g = _gen(5)
        self.table = nn.Parameter(torch.randn(V, V, generator=g) * (4 if peaked else 1))
        self.seen = []

    def forward(self, idx, targets=None):
        if idx.shape[1] > self.config.block_size:
            raise CheckFailure(f"generate: the model was called with a context of {idx.shape[1]} tokens, more than "
                               f"block_size = {self.config.block_size}\n  hint: keep the last block_size tokens: "
                               f"idx[:, -block_size:]")
        self.seen.append(idx.clone())
        T = idx.shape[1]
        # Only the last position's logits are meaningful; others point elsewhere, to catch logits[:, 0].
        logits = self.table[idx].clone()
        if T > 1:
            logits[:, :-1] = torch.roll(logits[:, :-1], 3, dims=-1) * 2
        return logits, None


def _reference_generate(model, idx, n, generator, temperature=1.0, top_k=None):
    for _ in range(n):
        logits = model(idx[:, -model.config.block_size:])[0][:, -1] / temperature
        if top_k is not None:
            kth = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
    return idx


@_one_thread
def generate(generate, seed=0):
    what = "generate(model, idx, max_new_tokens, generator, temperature, top_k)"
    V, block_size = 7, 4
    model = _Scripted(V, block_size)
    idx = torch.tensor([[1, 2, 3], [4, 5, 6]])
    before = idx.clone()
    out = _tensor(what, generate(model, idx, 10, _gen(seed)))
    expect(torch.equal(idx, before), what, "idx was modified in place", hint="build a new tensor with torch.cat")
    expect(tuple(out.shape) == (2, 13), what, f"the output has shape {tuple(out.shape)}, expected (2, 13)",
           hint="return idx followed by max_new_tokens new tokens")
    expect(out.dtype == torch.int64, what, f"the output has dtype {out.dtype}, expected torch.int64")
    assert_close(f"{what}: the first tokens", out[:, :3], idx, rtol=0, atol=0, hint="the output starts with idx")
    expect(((out >= 0) & (out < V)).all(), what, "tokens outside the vocabulary were produced")
    # Contexts: the last block_size tokens (cropped on the left), growing by one each step.
    contexts = [s.shape[1] for s in model.seen]
    expect(len(contexts) == 10, what, f"the model was called {len(contexts)} times for 10 new tokens",
           hint="one call per new token")
    for i, seen in enumerate(model.seen):
        expected = out[:, : 3 + i][:, -block_size:]
        if seen.shape != expected.shape or not torch.equal(seen, expected):
            fail(what, f"at step {i} the model saw {seen[0].tolist()}, expected the last {block_size} tokens "
                       f"{expected[0].tolist()}", "crop the context on the left: idx[:, -block_size:]")
    # Reproducible with the generator, whatever the global random state.
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        runs.append(generate(_Scripted(V, block_size), idx, 12, _gen(seed + 7)))
    expect(torch.equal(runs[0], runs[1]), what, "the same generator seed gave different tokens",
           hint="pass generator=generator to torch.multinomial")
    expect(not torch.equal(runs[0], generate(_Scripted(V, block_size), idx, 12, _gen(seed + 8))), what,
           "generators with different seeds gave the same 12 tokens", hint="sample; do not take the argmax")
    # The right distribution, whatever way the draws are made: 4000 one-token samples after the
    # context (c0, c1) follow softmax(logits of the last position / temperature), restricted to the top k.
    N = 4000
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 3), (1.0, 1)):
        model = _Scripted(V, block_size)
        context = torch.tensor([[2, 5]] * N)
        out = generate(model, context, 1, _gen(seed + 11), temperature=temperature, top_k=top_k)
        with torch.no_grad():
            logits = model.table[5] / temperature
            if top_k is not None:
                logits = logits.masked_fill(logits < logits.topk(top_k).values[-1], float("-inf"))
            p = logits.softmax(-1).double()
        freq = torch.bincount(out[:, -1], minlength=V).double() / N
        tolerance = 5 * (p * (1 - p) / N).sqrt() + 2e-3
        if ((freq - p).abs() > tolerance).any():
            fail(what, f"with temperature={temperature}, top_k={top_k} the next-token frequencies "
                       f"{[round(f, 3) for f in freq.tolist()]} are not the model's probabilities "
                       f"{[round(q, 3) for q in p.tolist()]}",
                 "logits of the last position (logits[:, -1, :]) divided by the temperature; keep the top_k "
                 "largest, set the others to -inf; softmax; torch.multinomial")
    # Eval mode while sampling, and the mode restored.
    model = _Scripted(V, block_size)
    modes = []
    model.register_forward_pre_hook(lambda m, a: modes.append(m.training))
    model.train()
    generate(model, idx, 2, _gen(seed))
    expect(not any(modes), what, "the model was in training mode while sampling (dropout active)",
           hint="call model.eval() before sampling")
    expect(model.training, what, "the model was left in eval mode", hint="restore the mode it was in")
