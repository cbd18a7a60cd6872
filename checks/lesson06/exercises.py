"""Checks of lesson 06 (GPT), one function per exercise.

The oracles are PyTorch's own: F.scaled_dot_product_attention(is_causal=True)
for attention, nn.LayerNorm for LayerNorm, built-in modules for the block and
the model, autograd through them for every gradient, and exact formulas (ln V,
the parameter count). Causality is checked as a property over random shapes
with hypothesis: changing the input after position t never changes the output
at positions <= t. No check trains more than a few dozen steps of a tiny model.

Learner code runs only through handles (course.grading.handles). Whatever
needs the learner's objects alive (autograd through their code, modules and
dropout passed to their functions, their GPT class) runs in the `_probe_*`
functions below, which build those objects from plain data, call the
learner's code and return raw outputs and gradients. Every expected value is
computed here, in the check, never in a probe.
"""

import math
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.assertions import CheckFailure, assert_close, assert_scalar, expect, fail, judged_alone
from course.grading.handles import LearnerError, exercise

# Few examples, no deadline (slow but correct code must pass), same examples every run.
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))

NO_DETACH = "compute with differentiable torch operations (no .detach(), .item(), .data or torch.no_grad())"


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _tensor(what, value):
    expect(isinstance(value, torch.Tensor), what, f"expected a torch.Tensor, got {type(value).__name__}")
    return value


def _probe_backward(f, args, grad_out):
    """f(*args), its float tensor arguments made leaves that require grad; the output and, where it is
    connected to them through autograd, the gradients of sum(output * grad_out) with respect to each
    argument (None for an argument no gradient reached, or when the output does not require grad)."""
    leaves = [a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
              for a in args]
    out = f(*leaves)
    grads = [None] * len(leaves)
    if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == grad_out.shape:
        # sum(out * grad_out).backward(): the same gradients as out.backward(grad_out), which imports
        # sympy (through torch.fx) on its first use, a third of a second in each process.
        (out * grad_out.to(out.dtype)).sum().backward()
        grads = [a.grad if isinstance(a, torch.Tensor) else None for a in leaves]
    return out, grads


def _expect_gradients(what, out, grads, expected, tolerances, hint=None):
    """The output is connected through autograd, and every named gradient equals autograd's through
    the reference. grads and expected map a name (argument or parameter) to a gradient."""
    rtol, atol = tolerances
    expect(out.requires_grad, what, "the output is not connected to its inputs through autograd: nothing "
                                    "can be trained through it", hint=NO_DETACH)
    missing = [name for name in expected if grads.get(name) is None]  # a cut branch, named before any value
    names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    expect(not missing, what, f"no gradient reached {names}: {'it does' if len(missing) == 1 else 'they do'} not "
                              f"take part in the output through autograd", hint=hint or NO_DETACH)
    for name, exp in expected.items():
        assert_close(f"{what} gradient with respect to {name}", grads[name], exp, rtol=rtol, atol=atol,
                     hint=hint or f"values are right but the gradient is not: {NO_DETACH}")


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


@exercise
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


def _attention_gradients(what, out, grads, x, wq, wk, wv, n_head):
    """Gradients of the learner's attention (x, w_query, w_key, w_value order) against autograd
    through PyTorch's attention, in float64, for the same grad_out."""
    leaves = [t.double().requires_grad_() for t in (x, wq, wk, wv)]
    (_reference_heads(*leaves, n_head) * _grad_out(out.shape, x.shape[1]).double()).sum().backward()
    names = ("x", "w_query", "w_key", "w_value")
    _expect_gradients(what, out, dict(zip(names, grads)), {n: t.grad for n, t in zip(names, leaves)},
                      (1e-4, 1e-5), hint=f"queries, keys and values all carry gradient: {NO_DETACH}")


def _grad_out(shape, seed):
    """The upstream gradient of a probe's backward pass (any fixed non-trivial tensor will do)."""
    return torch.randn(tuple(shape), generator=_gen(1000 + seed))


def _probe_dropout(f, args, kind, p=0.5):
    """f(*args, dropout=...) with kind "spy" (a function that records the shapes it is applied to
    and returns zeros: the output and the shapes) or "eval" (nn.Dropout(p) in eval mode: the output)."""
    if kind == "eval":
        return f(*args, dropout=nn.Dropout(p).eval())
    seen = []

    def spy(w):
        seen.append(tuple(w.shape))
        return torch.zeros_like(w)

    return f(*args, dropout=spy), seen


def _dropout_on_weights(what, handle, args, weights_shape, out_shape):
    """The dropout module is applied once, to the attention weights (after the softmax)."""
    out, seen = handle.run(_probe_dropout, args, "spy")
    hint = "apply dropout to the attention weights, after the softmax and before the product with v"
    # Any layout of the weights will do: all heads at once or one call per head, with or without a head
    # dimension; but only attention weights (..., T, T), and each of them once.
    right = (bool(seen) and all(len(shape) >= 2 and shape[-2:] == weights_shape[-2:] for shape in seen)
             and sum(math.prod(shape) for shape in seen) == math.prod(weights_shape))
    expect(right, what, f"the dropout module was applied to tensors of shapes {seen}, expected to the "
                        f"attention weights of shape {weights_shape} (once each)", hint)
    assert_close(f"{what} with a dropout that zeroes the weights", out, torch.zeros(out_shape), atol=1e-7, hint=hint)


@exercise
def attention_head(attention_head, seed=0):
    what = "attention_head(x, w_query, w_key, w_value)"
    g = _gen(seed)
    for B, T, C, d in ((2, 6, 12, 4), (1, 1, 8, 8), (3, 9, 10, 6)):
        x = torch.randn(B, T, C, generator=g)
        # Scores of order one, so that attention is neither uniform nor one-hot.
        wq, wk, wv = (torch.randn(d, C, generator=g) * 0.6 for _ in range(3))
        expected = _reference_heads(x.double(), wq.double(), wk.double(), wv.double(), 1)
        out, grads = attention_head.run(_probe_backward, (x, wq, wk, wv), _grad_out((B, T, d), T))
        out = _tensor(what, out)
        hint = _attention_hint(out, x.double(), wq.double(), wk.double(), wv.double(), 1)
        assert_close(f"{what} with (B, T, C) = {(B, T, C)}, head size {d}", out, expected,
                     rtol=1e-4, atol=1e-5, hint=hint or "compare with softmax(q k^T / sqrt(d), future masked) @ v")
        _attention_gradients(f"{what} with (B, T, C) = {(B, T, C)}", out, grads, x, wq, wk, wv, 1)
    _dropout_on_weights(what, attention_head, (x, wq, wk, wv), (B, T, T), (B, T, d))
    out = attention_head.run(_probe_dropout, (x, wq, wk, wv), "eval")
    assert_close(f"{what} with nn.Dropout(0.5) in eval mode", out, expected, rtol=1e-4, atol=1e-5)
    _causal_property(what, lambda x: attention_head(x, *(torch.randn(3, x.shape[-1], generator=_gen(1),
                                                                    dtype=x.dtype) for _ in range(3))),
                     hint="mask the scores of positions s > t with -inf before the softmax")
    # The mask is built for the actual T, however long.
    x = torch.randn(1, 40, 4, generator=g)
    out = _tensor(what, attention_head(x, *(torch.randn(2, 4, generator=g) for _ in range(3))))
    expect(tuple(out.shape) == (1, 40, 2), what, f"for T = 40 the output has shape {tuple(out.shape)}")


# ----------------------------------------------------------------------------- 3


@exercise
def multi_head_attention(multi_head_attention, seed=0):
    what = "multi_head_attention(x, w_query, w_key, w_value, n_head)"
    g = _gen(seed)
    for B, T, C, h in ((2, 5, 12, 3), (1, 7, 8, 2), (2, 4, 6, 1), (1, 3, 16, 4)):
        x = torch.randn(B, T, C, generator=g)
        wq, wk, wv = (torch.randn(C, C, generator=g) * 0.5 for _ in range(3))
        expected = _reference_heads(x.double(), wq.double(), wk.double(), wv.double(), h)
        out, grads = multi_head_attention.run(_probe_backward, (x, wq, wk, wv, h), _grad_out((B, T, C), T))
        out = _tensor(what, out)
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
        _attention_gradients(f"{what} with (B, T, C) = {(B, T, C)}, n_head = {h}", out, grads[:4], x, wq, wk, wv, h)
    out = multi_head_attention.run(_probe_dropout, (x, wq, wk, wv, h), "eval")
    assert_close(f"{what} with nn.Dropout(0.5) in eval mode", out, expected, rtol=1e-4, atol=1e-5)
    _dropout_on_weights(what, multi_head_attention, (x, wq, wk, wv, h), (B, h, T, T), (B, T, C))

    def f(x):
        C = x.shape[-1] * 2
        x = torch.cat([x, x.flip(-1)], dim=-1)  # C even, for 2 heads
        w = [torch.randn(C, C, generator=_gen(2), dtype=x.dtype) for _ in range(3)]
        return multi_head_attention(x, *w, 2)

    _causal_property(what, f, hint="mask the scores of positions s > t with -inf before the softmax")


# ----------------------------------------------------------------------------- 4


@exercise
def layer_norm(layer_norm, seed=0):
    what = "layer_norm(x, weight, bias, eps)"
    g = _gen(seed)
    # Shapes with T == C (and N == C) first: there a mean taken without keepdim broadcasts silently.
    for shape in ((6, 6), (1, 5, 5), (4, 4, 4), (4, 10), (2, 5, 7), (3, 1, 6)):
        C = shape[-1]
        x = torch.randn(*shape, generator=g) * 3 + torch.randn(shape[-1], generator=g)
        weight, bias = torch.randn(C, generator=g), torch.randn(C, generator=g)
        out, grads = layer_norm.run(_probe_backward, (x, weight, bias, 1e-5), _grad_out(shape, C))
        out = _tensor(what, out)
        ref = nn.LayerNorm(C, eps=1e-5)
        with torch.no_grad():
            ref.weight.copy_(weight)
            ref.bias.copy_(bias)
        xr = x.clone().requires_grad_()
        expected = ref(xr)
        hint = "normalise over the last dimension (dim=-1, keepdim=True), with the biased variance"
        if out.shape == expected.shape:
            xd, wd, bd = x.double(), weight.double(), bias.double()
            unbiased = (xd - xd.mean(-1, keepdim=True)) / torch.sqrt(xd.var(-1, keepdim=True, unbiased=True) + 1e-5)
            unbiased = unbiased * wd + bd
            try:  # mean and variance without keepdim: (..., C) - (...,) broadcasts only when the sizes allow
                flat = wd * (xd - xd.mean(-1)) / torch.sqrt(xd.var(-1, unbiased=False) + 1e-5) + bd
            except RuntimeError:
                flat = None
            if torch.allclose(out.detach().double(), unbiased, atol=1e-5):
                hint = "the variance is the unbiased one (divides by C - 1): LayerNorm divides by C (unbiased=False)"
            elif torch.allclose(out.detach().double(), F.layer_norm(xd, (C,)), atol=1e-5):
                hint = "weight and bias are ignored: return weight * normalised + bias"
            elif flat is not None and flat.shape == out.shape and torch.allclose(out.double(), flat, atol=1e-5):
                hint = ("the mean and variance lost their last dimension, so they broadcast against the wrong "
                        "axis: take them with keepdim=True")
        assert_close(f"{what} values for x of shape {shape}", out, expected, rtol=1e-4, atol=1e-5, hint=hint)
        (expected * _grad_out(shape, C).to(expected.dtype)).sum().backward()
        _expect_gradients(f"{what} for x of shape {shape}", out, dict(zip(("x", "weight", "bias"), grads)),
                          {"x": xr.grad, "weight": ref.weight.grad, "bias": ref.bias.grad}, (1e-4, 1e-5))
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

    def __init__(self, C, n_head):
        super().__init__()
        self.n_head = n_head
        self.w = nn.Parameter(torch.zeros(3, C, C))
        self.proj = nn.Linear(C, C)

    def forward(self, x):
        return self.proj(_reference_heads(x, self.w[0], self.w[1], self.w[2], self.n_head))


def _block(C, n_head):
    """A block of built-in modules, laid out as transformer_block expects (weights to be loaded)."""
    block = nn.Module()
    block.ln1, block.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
    block.attn = _SDPAttention(C, n_head)
    block.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))
    return block.double()


def _block_weights(C, g):
    block = _block(C, 1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        for ln in (block.ln1, block.ln2):  # gains around 1, different in ln1 and ln2
            ln.weight.add_(1.0)
    return dict(block.state_dict())  # a plain dict crosses the wire (an OrderedDict would not)


def _probe_block(transformer_block, C, n_head, weights, x, grad_out):
    """The learner's block on a block of built-in modules with these weights: the output and the
    gradients of sum(output * grad_out) with respect to x and to each parameter (by name)."""
    block = _block(C, n_head)
    block.load_state_dict(weights)
    x = x.clone().requires_grad_()
    out = transformer_block(block, x)
    grads = {}
    if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == grad_out.shape:
        (out * grad_out.to(out.dtype)).sum().backward()  # as in _probe_backward
        grads = {"x": x.grad, **{f"block.{name}": p.grad for name, p in block.named_parameters()}}
    return out, grads


@exercise
def transformer_block(transformer_block, seed=0):
    what = "transformer_block(block, x)"
    g = _gen(seed)
    for B, T, C, h in ((2, 5, 8, 2), (1, 6, 12, 3)):
        weights = _block_weights(C, g)
        x = torch.randn(B, T, C, generator=g, dtype=torch.float64)
        grad_out = _grad_out((B, T, C), T).double()
        out, grads = transformer_block.run(_probe_block, C, h, weights, x, grad_out)
        out = _tensor(what, out)
        block = _block(C, h)
        block.load_state_dict(weights)
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
        hint = next((m for m, v in wrong.items()
                     if out.shape == v.shape and torch.allclose(out.double(), v, atol=1e-6)),
                    "x = x + block.attn(block.ln1(x)); then x = x + block.mlp(block.ln2(x))")
        assert_close(f"{what} with (B, T, C) = {(B, T, C)}", out, expected, rtol=1e-6, atol=1e-8, hint=hint)
        # The block is trained: the gradient reaches x through the residual path and both branches,
        # and every parameter.
        xr = x.clone().requires_grad_()
        h1 = xr + block.attn(block.ln1(xr))
        ((h1 + block.mlp(block.ln2(h1))) * grad_out).sum().backward()
        expected_grads = {"x": xr.grad, **{f"block.{name}": p.grad for name, p in block.named_parameters()}}
        _expect_gradients(f"{what} with (B, T, C) = {(B, T, C)}", out, grads, expected_grads, (1e-6, 1e-8),
                          hint="the gradient must flow through each sum x + branch to both terms: a .detach() "
                               "(or torch.no_grad()) on the residual path or on a branch cuts it")


# ----------------------------------------------------------------------------- 6


def _n_params(c):
    C, V, T, L = c.n_embd, c.vocab_size, c.block_size, c.n_layer
    per_block = 3 * C * C + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C) + 2 * (2 * C)
    return V * C + T * C + L * per_block + 2 * C + (C * V + V)


def _container(V, T, C, L, p_drop):
    """A model made of built-in modules, laid out as gpt_forward expects (weights to be loaded)."""
    model = nn.Module()
    model.tok_emb, model.pos_emb = nn.Embedding(V, C), nn.Embedding(T, C)
    model.drop = nn.Dropout(p_drop)
    model.blocks = nn.ModuleList(nn.Sequential(nn.Linear(C, C), nn.Tanh()) for _ in range(L))
    model.ln_f = nn.LayerNorm(C)
    model.lm_head = nn.Linear(C, V)
    return model


def _container_weights(sizes, g):
    model = _container(*sizes)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return dict(model.state_dict())


def _probe_gpt_forward(gpt_forward, sizes, weights, idx, targets=None, train_seed=None):
    """The learner's gpt_forward on a model of built-in modules with these weights, in eval mode, or in
    train mode after torch.manual_seed(train_seed) (the caller's random state is restored). Returns
    what it returned and, when that is (logits, loss) with a loss to differentiate, the gradient of
    the loss with respect to each parameter (by name)."""
    model = _container(*sizes)
    model.load_state_dict(weights)
    model.train(train_seed is not None)
    with torch.random.fork_rng(devices=[]):
        if train_seed is not None:
            torch.manual_seed(train_seed)
        result = gpt_forward(model, idx, targets)
    grads = None
    if (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], torch.Tensor)
            and result[1].requires_grad and result[1].numel() == 1):
        result[1].backward()
        grads = {f"model.{name}": p.grad for name, p in model.named_parameters()}
    return result, grads


def _logits_hint(logits, expected, hidden):
    if isinstance(logits, torch.Tensor) and logits.dim() == 0:
        return "return (logits, loss) in that order"
    if isinstance(logits, torch.Tensor) and logits.shape == hidden.shape and (
            torch.allclose(logits.detach(), hidden, atol=1e-5) or logits.shape != expected.shape):
        return "that is the hidden state (B, T, C): the logits are model.lm_head(model.ln_f(x)), (B, T, V)"
    return "tok_emb(idx) + pos_emb(positions 0..T-1), the blocks in order, ln_f, lm_head"


@exercise
def gpt_forward(gpt_forward, GPT=None, GPTConfig=None, layer_norm=None, multi_head_attention=None,
                transformer_block=None, seed=0):
    """gpt_forward alone, on a model of built-in modules; then, when GPT is given, the learner's whole
    model. Their GPT runs their layer_norm, multi_head_attention and transformer_block: if the model
    checks fail and those are given, their own checks run, and the first that fails is named."""
    _gpt_forward(gpt_forward, seed)
    if GPT is None:
        return
    try:
        _gpt_model_checks(GPT, GPTConfig)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), "GPT(config) with your gpt_forward", e, [
            ("layer_norm", layer_norm), ("multi_head_attention", multi_head_attention),
            ("transformer_block", transformer_block)])
        raise


def _gpt_forward(gpt_forward, seed):
    what = "gpt_forward(model, idx, targets)"
    g = _gen(seed)
    for i, (B, T, V, C, block_size, L) in enumerate(((2, 5, 11, 8, 7, 2), (3, 7, 6, 4, 7, 1), (1, 1, 9, 6, 3, 3))):
        sizes = (V, block_size, C, L, 0.5)
        weights = _container_weights(sizes, g)
        model = _container(*sizes)
        model.load_state_dict(weights)
        model.eval()
        idx = torch.randint(V, (B, T), generator=g)
        targets = torch.randint(V, (B, T), generator=g)

        def reference(train_seed=None, positions=True):
            """Hidden state and logits of the model (eval mode, or train mode seeded like the probe)."""
            with torch.random.fork_rng(devices=[]):
                if train_seed is not None:
                    torch.manual_seed(train_seed)
                model.train(train_seed is not None)
                x = model.drop(model.tok_emb(idx) + (model.pos_emb.weight[:T] if positions else 0))
                model.eval()
            for block in model.blocks:
                x = block(x)
            return x, model.lm_head(model.ln_f(x))

        with torch.no_grad():
            hidden, expected = reference()
            no_pos = reference(positions=False)[1]
        # Without targets: (logits, None).
        result, _ = gpt_forward.run(_probe_gpt_forward, sizes, weights, idx)
        expect(isinstance(result, tuple) and len(result) == 2, what,
               f"expected (logits, loss), got {type(result).__name__}")
        logits, loss = result
        expect(loss is None, what, f"with targets=None the loss must be None, got {loss!r}")
        hint = _logits_hint(logits, expected, hidden)
        logits = _tensor(f"{what} logits", logits)
        if logits.shape == expected.shape and torch.allclose(logits, no_pos, atol=1e-5):
            hint = "the position embeddings are missing: add model.pos_emb(torch.arange(T))"
        assert_close(f"{what} logits with (B, T) = {(B, T)}, V = {V}", logits, expected, rtol=1e-5, atol=1e-5,
                     hint=hint)
        # With targets: (logits, loss), the same logits, and the loss trains every parameter.
        result, grads = gpt_forward.run(_probe_gpt_forward, sizes, weights, idx, targets)
        expect(isinstance(result, tuple) and len(result) == 2, what,
               f"with targets, expected (logits, loss), got {type(result).__name__}")
        logits, loss = result
        hint = _logits_hint(logits, expected, hidden)
        logits = _tensor(f"{what} logits with targets", logits)
        assert_close(f"{what} logits with targets, (B, T) = {(B, T)}, V = {V}", logits, expected, rtol=1e-5,
                     atol=1e-5, hint=hint)
        expect(isinstance(loss, torch.Tensor) and loss.dim() == 0, what,
               f"the loss must be a 0-dim tensor, got {getattr(loss, 'shape', type(loss).__name__)}")
        expect(loss.requires_grad, what, "the loss does not depend on the parameters through autograd",
               hint="no .item(), .detach() or torch.no_grad() in the forward pass")
        expected_loss = F.cross_entropy(expected.view(B * T, V), targets.view(B * T))
        assert_scalar(f"{what} loss with (B, T) = {(B, T)}", loss, expected_loss.item(), rtol=1e-5, atol=1e-6,
                      hint="F.cross_entropy(logits.view(B*T, V), targets.view(B*T)): mean over all positions")
        model.zero_grad()
        F.cross_entropy(reference()[1].view(B * T, V), targets.view(B * T)).backward()
        _expect_gradients(f"{what} loss with (B, T) = {(B, T)}", loss, grads or {},
                          {f"model.{name}": p.grad for name, p in model.named_parameters()}, (1e-4, 1e-6))
        # In train mode, the dropout module drops from the sum of the embeddings: seeded alike, the
        # learner's call and the reference draw the same mask.
        train_seed = seed + 100 + i
        result, _ = gpt_forward.run(_probe_gpt_forward, sizes, weights, idx, train_seed=train_seed)
        logits = _tensor(f"{what} logits in train mode", result[0] if isinstance(result, tuple) else result)
        with torch.no_grad():
            dropped = reference(train_seed)[1]
        hint = "apply model.drop once, to the sum of the embeddings: model.drop(tok_emb(idx) + pos_emb(pos))"
        if logits.shape == expected.shape and torch.allclose(logits, expected, atol=1e-5):
            hint = "the embedding dropout is missing: " + hint
        assert_close(f"{what} logits in train mode with dropout 0.5 (torch.manual_seed({train_seed}) first), "
                     f"(B, T) = {(B, T)}", logits, dropped, rtol=1e-5, atol=1e-5, hint=hint)


def _config(GPTConfig, cfg):
    try:
        return GPTConfig(**cfg)
    except TypeError:
        return SimpleNamespace(**cfg)


def _probe_n_params(GPT, GPTConfig, cfg):
    """The number of parameters of the learner's GPT(config)."""
    return sum(p.numel() for p in GPT(_config(GPTConfig or SimpleNamespace, cfg)).parameters())


def _probe_gpt(GPT, GPTConfig, cfg, seed, batches, targets=None):
    """A fresh GPT(config) after torch.manual_seed(seed), in eval mode and without gradients:
    what model(idx, targets) returns for each idx of batches."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(_config(GPTConfig or SimpleNamespace, cfg))
    model.eval()
    with torch.no_grad():
        return [model(idx, targets) if targets is not None else model(idx) for idx in batches]


def _probe_overfit(GPT, GPTConfig, cfg, seed, idx, targets, steps, lr):
    """The losses of `steps` Adam steps (written out: torch.optim's first use imports seconds of
    machinery) of a fresh GPT(config) on one batch, and the names of the parameters that the first
    loss sent no gradient to."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(_config(GPTConfig or SimpleNamespace, cfg))
    names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    m1, m2 = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    losses, unreached = [], None
    for step in range(1, steps + 1):
        _, loss = model(idx, targets)
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        if unreached is None:
            unreached = [n for n, gr in zip(names, grads) if gr is None]
        with torch.no_grad():
            for p, gr, a, b in zip(params, grads, m1, m2):
                if gr is not None:
                    a.mul_(0.9).add_(gr, alpha=0.1)
                    b.mul_(0.999).addcmul_(gr, gr, value=0.001)
                    p.sub_(lr * (a / (1 - 0.9**step)) / ((b / (1 - 0.999**step)).sqrt() + 1e-8))
    return losses, unreached


def _gpt_model_checks(GPT, GPTConfig):
    what = "GPT(config) with your gpt_forward"
    # The parameter count matches the formula for any configuration, and the published baby GPT.
    counts = []

    @PROPERTY
    @given(st.integers(2, 40), st.integers(1, 12), st.integers(1, 4), st.integers(1, 6), st.integers(1, 3))
    def count(V, T, n_head, d, L):
        cfg = dict(vocab_size=V, block_size=T, n_embd=n_head * d, n_head=n_head, n_layer=L, dropout=0.0)
        got = GPT.run(_probe_n_params, GPTConfig, cfg)
        if got != _n_params(SimpleNamespace(**cfg)):
            counts.append((cfg, got))
            raise AssertionError

    try:
        count()
    except AssertionError:
        cfg, got = counts[-1]
        fail(what, f"{got:,} parameters for {cfg}, the formula V*C + T*C + L*(12C^2 + 10C) + 2C + C*V + V "
                   f"gives {_n_params(SimpleNamespace(**cfg)):,}")
    # Causality through the whole model: tokens after t never change the logits at <= t.
    failures = []

    @PROPERTY
    @given(st.integers(1, 2), st.integers(2, 8), st.integers(2, 12), st.data())
    def causal(B, T, V, data):
        t = data.draw(st.integers(0, T - 2), label="t")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        g = _gen(seed)
        idx = torch.randint(V, (B, T), generator=g)
        idx2 = idx.clone()
        idx2[:, t + 1:] = (idx2[:, t + 1:] + torch.randint(1, V, (B, T - t - 1), generator=g)) % V
        cfg = dict(vocab_size=V, block_size=8, n_embd=8, n_head=2, n_layer=2, dropout=0.0)
        a, b = (_tensor(f"{what}: model(idx)[0]", r[0]) for r in GPT.run(_probe_gpt, GPTConfig, cfg, seed, [idx, idx2]))
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
    V = 65
    cfg = dict(vocab_size=V, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
    idx = torch.randint(V, (8, 16), generator=_gen(1))
    (_, loss), = GPT.run(_probe_gpt, GPTConfig, cfg, 0, [idx], torch.randint(V, (8, 16), generator=_gen(2)))
    loss = _tensor(f"{what}: the loss of model(idx, targets)", loss)
    expect(abs(loss.item() - math.log(V)) < 0.1, what,
           f"a fresh model's loss is {loss.item():.4f}, expected within 0.1 of ln {V} = {math.log(V):.4f}",
           hint="initialise weights from N(0, 0.02) and biases at 0, so the first logits are near 0")
    # Overfit one tiny batch: the whole pipeline (forward, loss, gradients) learns.
    cfg = dict(vocab_size=12, block_size=8, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
    idx = torch.randint(12, (2, 8), generator=_gen(3))
    targets = torch.randint(12, (2, 8), generator=_gen(4))
    # 30 steps: the reference is at 0.009-0.014 by then (0.05-0.08 after 20), far under the bar of 0.2
    losses, unreached = GPT.run(_probe_overfit, GPTConfig, cfg, 0, idx, targets, 30, 1e-2)
    expect(not unreached, what, f"the loss sends no gradient to {', '.join(unreached[:6])}"
                                f"{f' and {len(unreached) - 6} more' if len(unreached) > 6 else ''}: they never train",
           hint="a .detach(), .data or torch.no_grad() cuts them off; every parameter must take part in the logits")
    expect(losses[-1] < 0.2, what, f"after 30 Adam steps on one batch of 2x8 random tokens the loss is "
                                   f"{losses[-1]:.3f}; a working model memorises it (< 0.2)",
           hint="is the loss computed from the logits with gradients flowing to every parameter?")


# ----------------------------------------------------------------------------- 7


class _Scripted(nn.Module):
    """A stand-in model whose next-token logits depend on the last token (a row of `table`).

    It records each context it sees and the mode it was in.
    """

    def __init__(self, table, block_size):
        super().__init__()
        self.config = SimpleNamespace(block_size=block_size, vocab_size=table.shape[0])
        self.table = nn.Parameter(table.clone())
        self.seen, self.modes, self.grads = [], [], []

    def forward(self, idx, targets=None):
        self.seen.append(idx.clone())
        self.modes.append(self.training)
        self.grads.append(torch.is_grad_enabled())
        # Only the last position's logits are meaningful; others point elsewhere, to catch logits[:, 0].
        logits = self.table[idx].clone()
        if idx.shape[1] > 1:
            logits[:, :-1] = torch.roll(logits[:, :-1], 3, dims=-1) * 2
        return logits, None


def _table(V):
    return torch.randn(V, V, generator=_gen(5))


def _probe_generate(generate, table, block_size, idx, max_new_tokens, generator, global_seed=None, train=False,
                    **options):
    """The learner's generate on a _Scripted model (in train mode if `train`), after
    torch.manual_seed(global_seed) if given (the caller's random state is restored). Returns what it
    returned, idx after the call, the contexts the model saw, its mode at each call and after, and
    whether gradients were on at each call."""
    model = _Scripted(table, block_size)
    model.train(train)
    with torch.random.fork_rng(devices=[]):
        if global_seed is not None:
            torch.manual_seed(global_seed)
        out = generate(model, idx, max_new_tokens, generator, **options)
    return {"out": out, "idx": idx, "seen": model.seen, "modes": model.modes, "training": model.training,
            "grads": model.grads}


@exercise
def generate(generate, seed=0):
    what = "generate(model, idx, max_new_tokens, generator, temperature, top_k)"
    V, block_size = 7, 4
    table = _table(V)
    idx = torch.tensor([[1, 2, 3], [4, 5, 6]])
    run = generate.run(_probe_generate, table, block_size, idx, 10, _gen(seed))
    out = _tensor(what, run["out"])
    expect(torch.equal(run["idx"], idx), what, "idx was modified in place", hint="build a new tensor with torch.cat")
    expect(tuple(out.shape) == (2, 13), what, f"the output has shape {tuple(out.shape)}, expected (2, 13)",
           hint="return idx followed by max_new_tokens new tokens")
    expect(out.dtype == torch.int64, what, f"the output has dtype {out.dtype}, expected torch.int64")
    assert_close(f"{what}: the first tokens", out[:, :3], idx, rtol=0, atol=0, hint="the output starts with idx")
    expect(((out >= 0) & (out < V)).all(), what, "tokens outside the vocabulary were produced")
    # Contexts: the last block_size tokens (cropped on the left), growing by one each step.
    seen = run["seen"]
    longest = max((s.shape[1] for s in seen), default=0)
    expect(longest <= block_size, what, f"the model was called with a context of {longest} tokens, more than "
                                        f"block_size = {block_size}",
           hint="keep the last block_size tokens: idx[:, -block_size:]")
    expect(len(seen) == 10, what, f"the model was called {len(seen)} times for 10 new tokens",
           hint="one call per new token")
    for i, context in enumerate(seen):
        expected = out[:, : 3 + i][:, -block_size:]
        if context.shape != expected.shape or not torch.equal(context, expected):
            fail(what, f"at step {i} the model saw {context[0].tolist()}, expected the last {block_size} tokens "
                       f"{expected[0].tolist()}", "crop the context on the left: idx[:, -block_size:]")
    # Reproducible with the generator, whatever the global random state.
    runs = [generate.run(_probe_generate, table, block_size, idx, 12, _gen(seed + 7), global_seed=s)["out"]
            for s in (1, 2)]
    expect(torch.equal(runs[0], runs[1]), what, "the same generator seed gave different tokens",
           hint="pass generator=generator to torch.multinomial")
    other = generate.run(_probe_generate, table, block_size, idx, 12, _gen(seed + 8))["out"]
    expect(not torch.equal(runs[0], other), what, "generators with different seeds gave the same 12 tokens",
           hint="sample; do not take the argmax")
    # The right distribution, whatever way the draws are made: 4000 one-token samples after the
    # context (c0, c1) follow softmax(logits of the last position / temperature), restricted to the top k
    # (all of them when top_k >= V).
    N = 4000
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 3), (1.0, 1), (1.0, V + 3)):
        context = torch.tensor([[2, 5]] * N)
        try:
            out = generate.run(_probe_generate, table, block_size, context, 1, _gen(seed + 11),
                               temperature=temperature, top_k=top_k)["out"]
        except LearnerError as e:
            if top_k is None or top_k <= V or e.is_a("NotImplementedError"):
                raise
            fail(what, f"with top_k={top_k}, more than the vocabulary of {V}, your code raised {e.type_name}: "
                       f"{e.message[:200]}", "top_k >= V keeps every token: torch.topk(logits, min(top_k, V))")
        out = _tensor(what, out)
        expect(tuple(out.shape) == (N, 3), what, f"the output has shape {tuple(out.shape)}, expected {(N, 3)}")
        logits = table[5] / temperature
        if top_k is not None:
            logits = logits.masked_fill(logits < logits.topk(min(top_k, V)).values[-1], float("-inf"))
        p = logits.softmax(-1).double()
        freq = torch.bincount(out[:, -1].clamp(0, V - 1), minlength=V).double() / N
        tolerance = 5 * (p * (1 - p) / N).sqrt() + 2e-3
        if ((freq - p).abs() > tolerance).any():
            fail(what, f"with temperature={temperature}, top_k={top_k} the next-token frequencies "
                       f"{[round(f, 3) for f in freq.tolist()]} are not the model's probabilities "
                       f"{[round(q, 3) for q in p.tolist()]}",
                 "logits of the last position (logits[:, -1, :]) divided by the temperature; keep the top_k "
                 "largest (all of them when top_k >= V), set the others to -inf; softmax; torch.multinomial")
    # Eval mode while sampling, and the mode restored.
    run = generate.run(_probe_generate, table, block_size, idx, 2, _gen(seed), train=True)
    expect(not any(run["modes"]), what, "the model was in training mode while sampling (dropout active)",
           hint="call model.eval() before sampling")
    expect(run["training"], what, "the model was left in eval mode", hint="restore the mode it was in")
    run = generate.run(_probe_generate, table, block_size, idx, 2, _gen(seed), train=False)
    expect(not run["training"], what, "the model came in eval mode and was left in training mode",
           hint="restore the mode it was in: remember model.training before model.eval(), then model.train(that)")
    expect(not any(run["grads"]), what, "the model was called with gradients on: each sampled token built a graph",
           hint="sample under torch.no_grad()")
