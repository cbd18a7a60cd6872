"""Checks of lesson 05 (WaveNet-like hierarchy, causal dilated convolutions), one per exercise.

Learner code runs only through handles (course.grading.handles): a `_probe_*`
function instantiates the learner's class on the learner's side, runs it and
returns plain tensors; the expected values are computed here, never in a probe.
Oracles are PyTorch's own: torch.nn.BatchNorm1d on the transposed (B, C, T)
input (values, running statistics, gradients through autograd),
torch.nn.functional.conv1d on a left-padded input, plain indexing and reshapes,
and exact formulas (parameter counts, the receptive field). Causality is a
hypothesis property. No training runs here.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.assertions import assert_close, assert_equal, expect, fail
from course.grading.handles import LearnerError, Missing, exercise

# Few examples, no deadline (slow but correct code must pass), the same examples every run.
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _is_tensor(x):
    return isinstance(x, torch.Tensor)


def _blank_or_timeout(e):
    """A blank exercise, a missing one or a timeout: the verdict reports these as they are."""
    return isinstance(e, Missing) or e.is_a("NotImplementedError") or e.type_name == "CheckTimeout"


def _raised(e):
    """The learner's exception in one line, with the line of their code it came from."""
    at = f" at `{e.frames[-1][3].strip()}`" if e.frames and e.frames[-1][3] else ""
    return f"raised {e.type_name}{at}: {(e.message.splitlines() or [''])[0][:160]}"


def _std_close(what, t, expected, rel, hint):
    """The sample std of t within a relative `rel` of `expected`, and its mean near 0."""
    t = t.detach().double()
    std, mean = t.std().item(), t.mean().item()
    if not abs(std - expected) <= rel * expected:
        fail(what, f"std is {std:.4g}, expected {expected:.4g} (within {rel:.0%})", hint)
    expect(abs(mean) <= 6 * expected / math.sqrt(t.numel()), what,
           f"mean is {mean:.4g}, expected about 0 (std {expected:.4g})",
           hint="draw from a normal distribution centred on 0: torch.randn, not torch.rand")


def _plain(value):
    """Tensors in a probe's result, copied to the standard layout: the wire format cannot send some
    contiguous tensors whose last dimension has size 1 and a stride other than 1 (an einsum can make one)."""
    if isinstance(value, torch.Tensor):
        t = torch.empty(value.shape, dtype=value.dtype).copy_(value.detach())
        return t.requires_grad_() if value.requires_grad and t.is_floating_point() else t
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _param_info(obj, names):
    """What the checks need to know about a layer's parameters (run on the learner's side)."""
    params = obj.parameters()
    info = {"is_list": isinstance(params, list), "n": len(params) if isinstance(params, (list, tuple)) else -1}
    attrs = [getattr(obj, name, None) for name in names]
    info["same"] = (isinstance(params, (list, tuple)) and len(params) == len(attrs)
                    and all(p is a for p, a in zip(params, attrs)))
    info["leaf"] = [bool(getattr(a, "is_leaf", False)) for a in attrs]
    info["requires_grad"] = [bool(getattr(a, "requires_grad", False)) for a in attrs]
    return info


def _expect_params(what, info, names, scaled=False):
    """parameters() lists the layer's own tensors, leaves that require grad. `scaled`: the layer scales a
    draw (a scaling after .requires_grad_() makes a non-leaf)."""
    expect(info["is_list"] and info["same"], what,
           f"parameters() should return the list [{', '.join('self.' + n for n in names)}] (the same tensors)",
           hint="return the tensors themselves, in that order, so that SGD updates the layer")
    for name, leaf, grad in zip(names, info["leaf"], info["requires_grad"]):
        expect(leaf and grad, what, f"{name} should be a leaf tensor with requires_grad=True",
               hint="scale first, then call .requires_grad_() (or scale under torch.no_grad())" if scaled else
               "create the tensor, then call .requires_grad_() on it (or pass requires_grad=True)")


def _describe(model):
    """[(type name, {attribute: tensor copy or plain value})] of a Sequential's layers (learner's side)."""
    out = []
    for layer in getattr(model, "layers", None) or []:
        attrs = {}
        for key, value in vars(layer).items():
            if isinstance(value, torch.Tensor):
                attrs[key] = value.detach().clone()
            elif value is None or isinstance(value, (bool, int, float, str)):
                attrs[key] = value
        if hasattr(layer, "layers"):
            attrs["layers"] = _describe(layer)
        out.append((type(layer).__name__, attrs))
    return out


# ----------------------------------------------------------------------- Embedding


def _probe_embedding_new(Embedding, V, E, seed):
    emb = Embedding(V, E, generator=_gen(seed))
    twin = Embedding(V, E, generator=_gen(seed))
    other = Embedding(V, E, generator=_gen(seed + 1))
    return _plain({"weight": emb.weight, "twin": twin.weight, "other": other.weight,
                   "params": _param_info(emb, ["weight"])})


def _probe_embedding_windows(Embedding, W, tokens, block_size):
    """The layer on the windows tokens.unfold(0, block_size, 1), as the lesson feeds it: not contiguous."""
    emb = Embedding(*W.shape)
    emb.weight = W.clone().requires_grad_()
    with torch.no_grad():
        return _plain(emb(tokens.unfold(0, block_size, 1)))


def _probe_embedding_forward(Embedding, W, IXs, grads_out):
    emb = Embedding(*W.shape)
    emb.weight = W.clone().requires_grad_()
    outs, grads = [], []
    for IX, g_out in zip(IXs, grads_out):
        emb.weight.grad = None
        out = emb(IX)
        outs.append(out)
        if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == g_out.shape:
            (out * g_out).sum().backward()
        grads.append(emb.weight.grad)
    return _plain((outs, grads))


@exercise
def Embedding(Embedding, seed=0):
    what = "Embedding(num_embeddings, embedding_dim, generator)"
    V, E = 60, 40
    new = Embedding.run(_probe_embedding_new, V, E, seed)
    w = new["weight"]
    expect(_is_tensor(w), what, f"self.weight should be a tensor, got {type(w).__name__}")
    expect(tuple(w.shape) == (V, E) and w.dtype == torch.float32, what,
           f"weight is {w.dtype} of shape {tuple(w.shape)}, expected float32 {(V, E)}",
           hint="one row per token: torch.randn(num_embeddings, embedding_dim, generator=generator)")
    _std_close(f"{what}: weight", w, 1.0, 0.1, hint="weight ~ N(0, 1): torch.randn")
    _expect_params(what, new["params"], ["weight"])
    expect(torch.equal(w, new["twin"]) and not torch.equal(w, new["other"]), what,
           "the weights do not follow the generator (same seed: same weights, other seed: others)",
           hint="pass generator=generator to torch.randn")

    g = _gen(seed + 10)
    V, E = 7, 5
    W = torch.randn(V, E, generator=g)
    # The last two lack the largest indices: every index below num_embeddings is valid, whichever occur.
    IXs = [torch.randint(0, V, (4, 3), generator=g), torch.randint(0, V, (9,), generator=g),
           torch.randint(0, V, (2, 3, 4), generator=g), torch.tensor([[6, 6, 0, 6]]),
           torch.randint(0, V - 2, (3, 5), generator=g), torch.tensor([[2, 0], [1, 2]])]
    grads_out = [torch.randn(*IX.shape, E, generator=g) for IX in IXs]
    try:
        outs, grads = Embedding.run(_probe_embedding_forward, W, IXs, grads_out)
    except LearnerError as e:
        _raised_on_some_indices(Embedding, what, e, W, IXs, grads_out)
        raise
    for IX, out, grad, g_out in zip(IXs, outs, grads, grads_out):
        where = f"{what} called on indices of shape {tuple(IX.shape)}"
        assert_close(where, out, W[IX], rtol=0, atol=0,
                     hint="return the rows weight[IX]: the result has shape IX.shape + (embedding_dim,)")
        expect(grad is not None, where, "no gradient reached weight",
               hint="index the weight tensor itself (no .detach(), .data or copies into new tensors)")
        Wr = W.clone().requires_grad_()
        (Wr[IX] * g_out).sum().backward()
        assert_close(f"{where}: gradient with respect to weight", grad, Wr.grad, rtol=1e-5, atol=1e-6,
                     hint="a token used twice gets the sum of both gradients: weight[IX] does that")
    # Indices that are not contiguous: the lesson's windows of a short name, tokens.unfold(0, 8, 1).
    tokens = torch.randint(0, V, (11,), generator=g)
    where = f"{what} called on the windows tokens.unfold(0, 8, 1) of {len(tokens)} tokens (not contiguous)"
    try:
        out = Embedding.run(_probe_embedding_windows, W, tokens, 8)
    except LearnerError as e:
        if _blank_or_timeout(e):
            raise
        fail(where, _raised(e), hint="the lesson's indices are not always contiguous, and .view refuses them: "
                                     "index weight[IX] as it is, or use .reshape")
    assert_close(where, out, W[tokens.unfold(0, 8, 1)], rtol=0, atol=0, hint="return the rows weight[IX]")


def _raised_on_some_indices(Embedding, what, error, W, IXs, grads_out):
    """Name the index tensor on which the learner's forward raised (each alone); returns if none does."""
    if _blank_or_timeout(error):
        return
    V = len(W)
    for IX, g_out in zip(IXs, grads_out):
        try:
            Embedding.run(_probe_embedding_forward, W, [IX], [g_out])
        except LearnerError as e:
            if _blank_or_timeout(e):
                raise
            top = int(IX.max())
            hint = ("every index below num_embeddings is valid, whether or not the largest ones occur: "
                    "F.one_hot(IX) has IX.max() + 1 columns; give it num_classes=num_embeddings, or index "
                    "weight[IX]") if top < V - 1 else "return weight[IX]"
            fail(f"{what} with num_embeddings={V}, called on indices of shape {tuple(IX.shape)} (largest {top})",
                 _raised(e), hint)


# ---------------------------------------------------------------- FlattenConsecutive


def _probe_flatten(FlattenConsecutive, n, xs, strided=False):
    layer = FlattenConsecutive(n)
    if strided:  # the same values in non-contiguous layouts: (T, B, C) and (B, C, T) memory orders
        xs = [x.transpose(0, 1).contiguous().transpose(0, 1) if i % 2 == 0 else
              x.transpose(1, 2).contiguous().transpose(1, 2) for i, x in enumerate(xs)]
    # The documented attribute n: the int itself, else a description of what the layer has.
    if not hasattr(layer, "n"):
        attribute = "no attribute n"
    elif isinstance(layer.n, bool) or not isinstance(layer.n, int):
        attribute = f"n of type {type(layer.n).__name__}"
    else:
        attribute = layer.n
    return _plain(([layer(x) for x in xs], _param_list(layer), attribute))


def _param_list(layer):
    params = layer.parameters()
    return len(params) if isinstance(params, (list, tuple)) else -1


def _flatten_hint(out, x, n):
    B, T, C = x.shape
    candidates = [
        (x.reshape(B, n, T // n, C).transpose(1, 2).reshape(B, T // n, n * C),
         "group i must hold positions i*n .. i*n + n - 1 (neighbours), not positions i, i + T/n, ...: "
         "x.reshape(B, T // n, n * C)"),
        (x.reshape(B, T // n, n, C).transpose(2, 3).reshape(B, T // n, n * C),
         "the channels are interleaved: concatenate whole vectors, [x_0, x_1], not their elements "
         "alternately: x.reshape(B, T // n, n * C)"),
        (x.flip(1).reshape(B, T // n, n * C).flip(1),
         "the positions of a group are in reverse order: earliest first"),
    ]
    for candidate, hint in candidates:
        if T // n == 1:
            candidate = candidate.squeeze(1)
        if out.shape == candidate.shape and torch.equal(out, candidate):
            return hint
    if T // n == 1 and out.shape == (B, 1, n * C):
        return "when the result has a single position, drop the time dimension: (B, n * C)"
    expected_shape = (B, T // n, n * C) if T // n > 1 else (B, n * C)
    if B == 1 and tuple(out.shape) == expected_shape[1:]:
        return "only the time dimension may be dropped: .squeeze() also drops a batch of one; use .squeeze(1)"
    if T // n > 1 and out.shape == (B, T * C):
        return "flatten n consecutive positions at a time, not the whole context: (B, T // n, n * C)"
    return "out[b, i] = concatenation of x[b, i*n], ..., x[b, i*n + n - 1]: x.reshape(B, T // n, n * C)"


@exercise
def FlattenConsecutive(FlattenConsecutive, seed=0):
    what = "FlattenConsecutive(n)"
    g = _gen(seed)
    cases = {2: [(3, 8, 5), (4, 2, 3), (1, 8, 3), (1, 2, 6)], 3: [(2, 6, 4), (1, 3, 2)],
             4: [(4, 4, 3), (2, 16, 1)], 1: [(2, 5, 3), (3, 1, 2)]}
    for n, shapes in cases.items():
        xs = [torch.randn(*shape, generator=g) + 10 * torch.arange(shape[1]).view(1, -1, 1) for shape in shapes]
        outs, n_params, attribute = FlattenConsecutive.run(_probe_flatten, n, xs)
        expect(n_params == 0, what, f"parameters() should be an empty list, got {n_params} entries",
               hint="inherit parameters() from Module")
        for x, out in zip(xs, outs):
            B, T, C = x.shape
            expected = x.reshape(B, T // n, n * C)
            if T // n == 1:
                expected = expected.squeeze(1)
            hint = _flatten_hint(out, x, n) if _is_tensor(out) else None
            assert_close(f"{what} with n={n} on x of shape {(B, T, C)}", out, expected, rtol=0, atol=0, hint=hint)
        expect(isinstance(attribute, int) and attribute == n, what,
               f"FlattenConsecutive({n}).n should be {n}, the layer has "
               + (attribute if isinstance(attribute, str) else f"n = {attribute}"),
               hint="store the factor as self.n, the attribute the docstring names: hierarchy_to_conv reads "
                    "layer.n")
    # Inputs that are not contiguous, as the lesson's own are: the Embedding of the windows
    # tokens.unfold(0, 8, 1) of a short name comes out in (T, B, C) memory order.
    for n, shapes in {2: [(3, 8, 5), (2, 4, 3)], 3: [(2, 6, 4), (3, 3, 2)]}.items():
        xs = [torch.randn(*shape, generator=g) for shape in shapes]
        try:
            outs, _, _ = FlattenConsecutive.run(_probe_flatten, n, xs, True)
        except LearnerError as e:
            if _blank_or_timeout(e):
                raise
            fail(f"{what} with n={n} on inputs that are not contiguous (a transposed memory order)", _raised(e),
                 hint="the lesson's inputs are not always contiguous (the Embedding of unfold windows of a short "
                      "name is not), and .view refuses them: use x.reshape(...), which copies only when it must "
                      "(or x.contiguous().view(...))")
        for x, out in zip(xs, outs):
            B, T, C = x.shape
            expected = x.reshape(B, T // n, n * C)
            if T // n == 1:
                expected = expected.squeeze(1)
            assert_close(f"{what} with n={n} on a non-contiguous x of shape {(B, T, C)}", out, expected, rtol=0,
                         atol=0, hint="the result depends on the values of x, not on how they are laid out in memory")


# --------------------------------------------------------------------- BatchNorm1d


def _probe_bn_new(BatchNorm1d, dim):
    bn = BatchNorm1d(dim)
    info = {name: getattr(bn, name, None) for name in ("gamma", "beta", "running_mean", "running_var",
                                                       "eps", "momentum", "training")}
    info["params"] = _param_info(bn, ["gamma", "beta"])
    return _plain(info)


def _buffers(bn):
    """Copies of the running statistics as they are now: a layer may update them in place
    (mul_, add_, lerp_, as torch.nn.BatchNorm1d does), so a reference would show only the last step."""
    return {name: _plain(getattr(bn, name, None)) for name in ("running_mean", "running_var")}


def _channels_first(x):
    """The same values in (B, C, T) memory order, not contiguous: what F.conv1d(...).transpose(1, 2) returns."""
    return x.transpose(1, 2).contiguous().transpose(1, 2) if x.ndim == 3 else x


def _probe_bn_run(BatchNorm1d, dim, kwargs, gamma, beta, train_xs, grads_out, eval_xs, strided=False):
    """Training steps (output, gradients, running statistics after each), then evaluation-mode calls; with
    `strided`, every 3-D input in (B, C, T) memory order."""
    bn = BatchNorm1d(dim, **kwargs)
    bn.gamma, bn.beta = gamma.clone().requires_grad_(), beta.clone().requires_grad_()
    layout = _channels_first if strided else (lambda x: x)
    steps = []
    for x, g_out in zip(train_xs, grads_out):
        x = x.clone().requires_grad_()
        bn.gamma.grad = bn.beta.grad = None
        out = bn(layout(x))
        if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == g_out.shape:
            (out * g_out).sum().backward()
        steps.append({"out": out, "x": x.grad, "gamma": bn.gamma.grad, "beta": bn.beta.grad,
                      **_buffers(bn)})
    evals = []
    if eval_xs is None:  # the training steps alone, so that their errors are reported before any of eval()'s
        return _plain((steps, evals, bn.training))
    bn.eval()
    for x in eval_xs:
        with torch.no_grad():
            out = bn(layout(x))
        evals.append({"out": out, **_buffers(bn), "training": bn.training})
    bn.train()
    return _plain((steps, evals, bn.training))


def _bn_hint(out, x, eps, gamma, beta):
    """Name the likely mistake from what the training-mode output looks like."""
    xd, dims = x.double(), tuple(range(x.ndim - 1))

    def norm(mean, var):
        return gamma * (xd - mean) / torch.sqrt(var + eps) + beta

    guesses = {
        "a 3-D input (B, T, C) is normalised over dims (0, 1), the batch and the positions: over dim 0 "
        "alone you get per-position statistics": norm(xd.mean(0), xd.var(0, unbiased=False)),
        "normalise with the biased variance (unbiased=False), as PyTorch does; the unbiased one goes "
        "into running_var only": norm(xd.mean(dims), xd.var(dims, unbiased=True)),
        "eps goes inside the square root: (x - mean) / sqrt(var + eps)":
            gamma * (xd - xd.mean(dims)) / (xd.var(dims, unbiased=False).sqrt() + eps) + beta,
        "the statistics are per feature (the last dimension): reduce over every other dimension":
            norm(xd.mean(-1, keepdim=True), xd.var(-1, unbiased=False, keepdim=True)),
    }
    for hint, candidate in guesses.items():
        if out.shape == candidate.shape and torch.allclose(out.double(), candidate, rtol=1e-4, atol=1e-4):
            return hint
    return ("training mode: gamma * (x - mean) / sqrt(var + eps) + beta with the mean and biased variance over "
            "every dimension but the last")


def _running_hint(got_mean, got_var, ref, momentum, ndim, before_mean=None):
    if ndim == 3 and (got_mean.ndim != 1 or got_var.ndim != 1):
        return ("running_mean and running_var must stay of shape (C,): on a (B, T, C) input reduce over "
                "dims (0, 1), without keepdim")
    if got_mean.shape != ref.running_mean.shape:
        return "running_mean and running_var have one entry per feature: shape (dim,)"
    if not torch.allclose(got_mean.double(), ref.running_mean.double(), rtol=1e-4, atol=1e-5):
        return (f"running = (1 - momentum) * running + momentum * batch statistic, momentum={momentum}: the new "
                f"batch gets the weight momentum")
    return ("running_var keeps the *unbiased* variance of the batch (over all B*T values of a feature), "
            "while the output is normalised with the biased one")


def _torch_bn(bn, x):
    """nn.BatchNorm1d on our (B, C) or (B, T, C) layout."""
    return bn(x) if x.ndim == 2 else bn(x.transpose(1, 2)).transpose(1, 2)


@exercise
def BatchNorm1d(BatchNorm1d, seed=0):
    what = "BatchNorm1d"
    new = BatchNorm1d.run(_probe_bn_new, 6)
    expect(new["training"] is True, what, "a new layer should be in training mode (training=True)")
    for name, value in (("gamma", 1.0), ("beta", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        t = new[name]
        expect(_is_tensor(t), what, f"self.{name} should be a tensor, got {type(t).__name__}")
        assert_close(f"{what}(6).{name} at creation", t, torch.full((6,), value), rtol=0, atol=0)
    _expect_params(what, new["params"], ["gamma", "beta"])
    expect(new["eps"] == 1e-5 and new["momentum"] == 0.1, what,
           "the defaults should be eps=1e-5 and momentum=0.1, as in torch.nn.BatchNorm1d")

    g = _gen(seed)
    # (batch shape for training, eval shapes, eps, momentum): 2-D and 3-D, nothing square.
    cases = [((12, 5), [(15, 5), (1, 5)], 1e-5, 0.1),
             ((6, 4, 5), [(3, 7, 5), (1, 1, 5)], 1e-5, 0.1),
             ((3, 7, 4), [(2, 2, 4)], 0.1, 0.3),
             ((1, 6, 3), [(4, 3)], 1e-5, 0.05),
             ((7, 9), [(2, 9)], 0.1, 0.3)]
    for train_shape, eval_shapes, eps, momentum in cases:
        C = train_shape[-1]
        ndim = len(train_shape)
        kind = "(B, C)" if ndim == 2 else "(B, T, C)"
        gamma, beta = 1 + 0.5 * torch.randn(C, generator=g), torch.randn(C, generator=g)
        # Different scales and offsets per feature, and per position (so per-position statistics differ).
        scale, shift = torch.rand(C, generator=g) * 3 + 0.5, torch.randn(C, generator=g) * 4
        pos = torch.randn(train_shape[1], C, generator=g) * 2 if ndim == 3 else 0

        def batch(shape):
            x = torch.randn(*shape, generator=g) * scale + shift
            return x + (pos[: shape[1]] if ndim == 3 and len(shape) == 3 and shape[1] <= len(pos) else 0)

        train_xs = [batch(train_shape) for _ in range(3)]
        grads_out = [torch.randn(*train_shape, generator=g) for _ in train_xs]
        eval_xs = [batch(s) for s in eval_shapes]
        args = (C, {"eps": eps, "momentum": momentum}, gamma, beta, train_xs, grads_out)
        steps, _, _ = BatchNorm1d.run(_probe_bn_run, *args, None)
        ref = nn.BatchNorm1d(C, eps=eps, momentum=momentum)
        with torch.no_grad():
            ref.weight.copy_(gamma)
            ref.bias.copy_(beta)
        expected_outs = []
        for i, (x0, g_out, got) in enumerate(zip(train_xs, grads_out, steps), start=1):
            where = f"{what} on a {kind} input of shape {tuple(x0.shape)}, training step {i} (eps={eps})"
            x = x0.clone().requires_grad_()
            ref.weight.grad = ref.bias.grad = None
            expected = _torch_bn(ref, x)
            expected_outs.append(expected.detach())
            out = got["out"]
            hint = _bn_hint(out, x0, eps, gamma.double(), beta.double()) if _is_tensor(out) else None
            assert_close(f"{where}: output", out, expected, rtol=1e-4, atol=2e-5, hint=hint)
            (expected * g_out).sum().backward()
            for name, exp in (("x", x.grad), ("gamma", ref.weight.grad), ("beta", ref.bias.grad)):
                expect(got[name] is not None, where, f"no gradient reached {name}",
                       hint="compute the output from x, gamma and beta with torch operations "
                            "(no .item(), .data or .detach() on the way)")
                assert_close(f"{where}: gradient with respect to {name}", got[name], exp, rtol=1e-4, atol=1e-5,
                             hint="the batch mean and variance are part of the graph: do not detach them")
            for name in ("running_mean", "running_var"):
                t = got[name]
                expect(_is_tensor(t), where, f"{name} should be a tensor, got {type(t).__name__}")
                expect(not t.requires_grad, where, f"{name} requires grad: it keeps autograd graphs alive",
                       hint="update the running statistics under torch.no_grad() (or from detached statistics)")
                assert_close(f"{where}: {name} (momentum={momentum})", t, getattr(ref, name), rtol=1e-4, atol=1e-5,
                             hint=_running_hint(got["running_mean"], got["running_var"], ref, momentum, ndim))
        # Again, then evaluation mode; 3-D inputs now in (B, C, T) memory order, as a CausalConv1d written
        # with F.conv1d(...).transpose(1, 2) hands them over in the lesson's stack.
        layout = " (not contiguous: (B, C, T) memory order)" if ndim == 3 else ""
        try:
            steps2, evals, training_after = BatchNorm1d.run(_probe_bn_run, *args, eval_xs, ndim == 3)
        except LearnerError as e:
            if _blank_or_timeout(e) or ndim != 3:
                raise
            fail(f"{what} on a {kind} input{layout}", _raised(e),
                 hint="inputs are not always contiguous, and .view refuses them: use .reshape, or reduce over "
                      "dims (0, 1) directly")
        for i, (x0, got, exp) in enumerate(zip(train_xs, steps2, expected_outs), start=1):
            assert_close(f"{what} on a {kind} input of shape {tuple(x0.shape)}{layout}, training step {i}: output",
                         got["out"], exp, rtol=1e-4, atol=2e-5,
                         hint="the result depends on the values of x, not on how they are laid out in memory")
        ref.eval()
        for x, got in zip(eval_xs, evals):
            where = f"{what} in evaluation mode on an input of shape {tuple(x.shape)} (after training on {kind})"
            expect(got["training"] is False, where, "eval() should set training to False")
            for name in ("running_mean", "running_var"):
                assert_close(f"{where}: {name}", got[name], getattr(ref, name), rtol=1e-4, atol=1e-5,
                             hint="evaluation mode must not change the running statistics: update them "
                                  "only when self.training is True")
            with torch.no_grad():
                expected = _torch_bn(ref, x)
            assert_close(f"{where}: output", got["out"], expected, rtol=1e-4, atol=2e-5,
                         hint="evaluation mode normalises with running_mean and running_var, "
                              "not with the statistics of the batch")
        expect(training_after is True, what, "train() after eval() should set training back to True")


# ---------------------------------------------------------------------- Sequential


class _Affine:
    """A check-side layer y = tanh(x * w + b), with its own mode; learner code sees only its API."""

    def __init__(self, w, b):
        self.w, self.b = w.clone().requires_grad_(), b.clone().requires_grad_()
        self.training = True

    def __call__(self, x):
        return torch.tanh(x * self.w + self.b)

    def parameters(self):
        return [self.w, self.b]

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)


class _Square(_Affine):
    def __init__(self):
        self.training = True

    def __call__(self, x):
        return x * x + 0.5

    def parameters(self):
        return []


def _modes(model):
    """(training flag, [children's modes]) for a container, the flag alone for a leaf layer."""
    if hasattr(model, "layers") and isinstance(model.layers, (list, tuple)):
        return (getattr(model, "training", None), [_modes(layer) for layer in model.layers])
    return getattr(model, "training", None)


def _probe_sequential(Sequential, weights, x):
    leaves = [_Affine(w, b) for w, b in weights]
    tensors = [t for leaf in leaves for t in (leaf.w, leaf.b)]
    a, b, c, d = leaves
    inner = Sequential([b, _Square(), Sequential([c])])
    model = Sequential([a, inner, d])
    out = {"forward": model(x), "empty": Sequential([])(x)}
    params = model.parameters()
    out["param_ids"] = [next((i for i, t in enumerate(tensors) if t is p), -1) for p in params] \
        if isinstance(params, (list, tuple)) else None
    out["returns_self"] = [model.eval() is model]
    out["after_eval"] = _modes(model)
    out["returns_self"].append(model.train() is model)
    out["after_train"] = _modes(model)
    model.train(False)
    out["after_train_false"] = _modes(model)
    return _plain(out)


def _flatten_modes(modes, path="model"):
    if isinstance(modes, tuple):
        flag, children = modes
        items = [(path, flag)]
        for i, child in enumerate(children):
            items += _flatten_modes(child, f"{path}.layers[{i}]")
        return items
    return [(path, modes)]


@exercise
def Sequential(Sequential, seed=0):
    what = "Sequential(layers)"
    g = _gen(seed)
    weights = [(torch.randn(3, generator=g), torch.randn(3, generator=g)) for _ in range(4)]
    x = torch.randn(5, 3, generator=g)
    got = Sequential.run(_probe_sequential, weights, x)

    def affine(x, w, b):
        return torch.tanh(x * w + b)

    (wa, ba), (wb, bb), (wc, bc), (wd, bd) = weights
    expected = affine(affine(affine(affine(x, wa, ba), wb, bb) ** 2 + 0.5, wc, bc), wd, bd)
    assert_close(f"{what} called on x: Sequential([a, Sequential([b, square, Sequential([c])]), d])",
                 got["forward"], expected, rtol=1e-6, atol=1e-6,
                 hint="call every layer in order, each on the previous one's output")
    assert_close(f"{what}: Sequential([]) called on x", got["empty"], x, rtol=0, atol=0,
                 hint="with no layers the input comes back unchanged")
    expect(got["param_ids"] is not None, what, "parameters() should return a list of tensors")
    assert_equal(f"{what}: parameters() of the nested model, as indices of [a.w, a.b, b.w, b.b, c.w, c.b, d.w, d.b]"
                 f" (-1: a tensor that is not one of them)", got["param_ids"], list(range(8)),
                 hint="collect layer.parameters() of every layer in order; a nested Sequential's parameters() "
                      "already includes its own layers'")
    for name, want in (("after_eval", False), ("after_train", True), ("after_train_false", False)):
        call = {"after_eval": "eval()", "after_train": "train()", "after_train_false": "train(False)"}[name]
        wrong = [path for path, flag in _flatten_modes(got[name]) if flag is not want]
        expect(not wrong, what, f"after model.{call}, training is not {want} in {', '.join(wrong[:4])}",
               hint="call layer.train(mode) on every layer, so that a nested Sequential passes it on to its own "
                    "layers; setting layer.training = mode stops at the first level")
    expect(all(got["returns_self"]), what, "eval() and train() should return the model itself",
           hint="return self at the end of train(), as torch.nn.Module does")


# ------------------------------------------------------------------ build_hierarchy


def _probe_build(build_hierarchy, V, block_size, E, H, seed, X, run=True):
    model = build_hierarchy(V, block_size, E, H, generator=_gen(seed))
    if not run:  # the layers alone, for the message when running them raised
        return _plain({"layers": _describe(model)})
    twin = build_hierarchy(V, block_size, E, H, generator=_gen(seed))
    params = model.parameters()
    out = {"layers": _describe(model), "n_params": sum(p.numel() for p in params),
           "leaf": all(p.is_leaf and p.requires_grad for p in params),
           "twin": [p.detach().clone() for p in twin.parameters()], "params": [p.detach().clone() for p in params]}
    out["train_logits"] = model(X)
    out["layers_after"] = _describe(model)
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(X)
    out["layers_after_eval"] = _describe(model)
    return _plain(out)


def _expect_draw_order(what, weights, V, E, H, levels, seed):
    """The Linear weights as drawn in the documented order from one generator: the Embedding's V * E
    normals first (in whatever shape), then each level's Linear, then the output Linear (scaled by 0.1)."""
    g = _gen(seed)
    torch.randn(V * E, generator=g)
    fan_in, expected = E, []
    for _ in range(levels):
        expected.append(torch.randn(2 * fan_in, H, generator=g) / (2 * fan_in) ** 0.5)
        fan_in = H
    expected.append(torch.randn(H, V, generator=g) / H**0.5 * 0.1)
    for i, (w, e) in enumerate(zip(weights, expected)):
        assert_close(f"{what}: the initial weight of Linear {i + 1}", w, e, rtol=1e-5, atol=1e-6,
                     hint="create the layers in the order of the table (Embedding, each level's Linear, the "
                          "output Linear last), each drawing from `generator`, and nothing else drawn between")


def _hierarchy_count(V, block_size, E, H):
    levels = int(math.log2(block_size))
    return V * E + (2 * E * H + 2 * H) + (levels - 1) * (2 * H * H + 2 * H) + (H * V + V)


def _expected_types(levels, level=("FlattenConsecutive", "Linear", "BatchNorm1d", "Tanh"), first=("Embedding",)):
    return list(first) + list(level) * levels + ["Linear"]


def _run_described(layers, X, training, conv=False):
    """The forward pass of described layers (check side; BatchNorm by nn.BatchNorm1d, convolutions by F.conv1d)."""
    x = X
    for name, a in layers:
        if name == "Embedding":
            x = a["weight"][x]
        elif name == "FlattenConsecutive":
            B, T, C = x.shape
            x = x.reshape(B, T // a["n"], a["n"] * C)
            if x.shape[1] == 1:
                x = x.squeeze(1)
        elif name == "Linear":
            x = x @ a["weight"] + (a["bias"] if a.get("bias") is not None else 0)
        elif name == "CausalConv1d":
            k, d = a["kernel_size"], a["dilation"]
            xt = x.transpose(1, 2)
            if a.get("pad", True):
                xt = F.pad(xt, ((k - 1) * d, 0))
            x = F.conv1d(xt, a["weight"].permute(2, 1, 0), dilation=d).transpose(1, 2)
            x = x + (a["bias"] if a.get("bias") is not None else 0)
        elif name == "BatchNorm1d":
            ref = nn.BatchNorm1d(len(a["gamma"]), eps=a["eps"], momentum=a["momentum"]).train(training)
            with torch.no_grad():
                ref.weight.copy_(a["gamma"])
                ref.bias.copy_(a["beta"])
                ref.running_mean.copy_(a["running_mean"])
                ref.running_var.copy_(a["running_var"])
                x = _torch_bn(ref, x)
        elif name == "Tanh":
            x = torch.tanh(x)
        else:
            raise ValueError(name)
    return x


def _eval_hint(before, after):
    """Which layer the evaluation-mode logits went wrong in, from the layers before and after that forward pass."""
    for (name, a), (_, b) in zip(before, after):
        if name == "BatchNorm1d" and any(_is_tensor(a.get(k)) and _is_tensor(b.get(k)) and not torch.equal(a[k], b[k])
                                         for k in ("running_mean", "running_var")):
            return ("a BatchNorm1d changed its running statistics in evaluation mode (and normalised with the "
                    "batch's): does BatchNorm1d pass its check?")
    if any(a.get("training") is not False for _, a in after):
        return "model.eval() must set training=False in every layer: does Sequential pass its check?"
    return ("in evaluation mode every BatchNorm1d normalises with its running statistics: do BatchNorm1d and "
            "Sequential pass their checks?")


@exercise
def build_hierarchy(build_hierarchy, seed=0):
    for V, block_size, E, H in ((27, 8, 24, 128), (11, 4, 5, 7), (13, 16, 3, 6)):
        what = f"build_hierarchy(vocab_size={V}, block_size={block_size}, n_embd={E}, n_hidden={H})"
        levels = int(math.log2(block_size))
        X = torch.randint(0, V, (400, block_size), generator=_gen(seed + V))
        types_hint = (f"block_size={block_size} = 2**{levels}: Embedding, then {levels} levels of "
                      f"FlattenConsecutive(2), Linear (no bias), BatchNorm1d, Tanh, then the output Linear "
                      f"(the number of levels follows block_size, which is not always 8)")
        try:
            got = build_hierarchy.run(_probe_build, V, block_size, E, H, seed, X)
        except LearnerError as e:
            if _blank_or_timeout(e):
                raise  # else: running the model raised; a wrong number of levels is the likely cause
            layers = build_hierarchy.run(_probe_build, V, block_size, E, H, seed, X, False)["layers"]
            assert_equal(f"{what}: the layer types", [name for name, _ in layers], _expected_types(levels),
                         hint=types_hint)
            raise
        names = [name for name, _ in got["layers"]]
        assert_equal(f"{what}: the layer types", names, _expected_types(levels), hint=types_hint)
        layers = got["layers"]
        fan_in = E
        for i, (name, a) in enumerate(layers):
            where = f"{what}: layer {i} ({name})"
            if name == "Embedding":
                expect(tuple(a["weight"].shape) == (V, E), where, f"weight has shape {tuple(a['weight'].shape)}, "
                       f"expected {(V, E)}")
            elif name == "FlattenConsecutive":
                expect(a.get("n") == 2, where, f"fuses {a.get('n')} positions, expected 2 (pairs)",
                       hint="FlattenConsecutive(2) at every level")
            elif name == "Linear" and i < len(layers) - 1:
                expect(tuple(a["weight"].shape) == (2 * fan_in, H), where,
                       f"weight has shape {tuple(a['weight'].shape)}, expected {(2 * fan_in, H)}",
                       hint="each level reads two concatenated vectors: 2 * n_embd inputs at the first level, "
                            "2 * n_hidden after")
                expect(a.get("bias") is None, where, "has a bias: the BatchNorm after it makes a bias useless",
                       hint="Linear(..., bias=False)")
                fan_in = H
            elif name == "BatchNorm1d":
                expect(len(a["gamma"]) == H, where, f"normalises {len(a['gamma'])} features, expected {H}")
        last = layers[-1][1]
        expect(tuple(last["weight"].shape) == (H, V) and last.get("bias") is not None, f"{what}: the output layer",
               f"expected Linear({H}, {V}) with a bias, got weight {tuple(last['weight'].shape)}, "
               f"bias {'None' if last.get('bias') is None else tuple(last['bias'].shape)}")
        _std_close(f"{what}: the output layer's weight", last["weight"], 0.1 / math.sqrt(H), 0.25,
                   hint="scale the last Linear's weight by 0.1 (so the first loss is near ln V)")
        _expect_draw_order(what, [a["weight"] for name, a in layers if name == "Linear"], V, E, H, levels, seed)
        expect(got["n_params"] == _hierarchy_count(V, block_size, E, H), what,
               f"{got['n_params']:,} parameters, expected {_hierarchy_count(V, block_size, E, H):,}",
               hint="count them with model.parameters(): every layer's parameters, nothing twice")
        expect(got["leaf"], what, "every parameter should be a leaf with requires_grad=True",
               hint="scale the last weight under torch.no_grad(), in place")
        expect(len(got["twin"]) == len(got["params"]) and all(torch.equal(a, b) for a, b in
                                                              zip(got["twin"], got["params"])),
               what, "two models built with generators of the same seed differ",
               hint="pass the generator to every layer that draws random numbers")
        expected = _run_described(layers, X, training=True)
        assert_close(f"{what}: logits in training mode", got["train_logits"], expected, rtol=1e-4, atol=1e-5,
                     hint="the layers are the right ones with the right weights, so one of your layers computes "
                          "something else: do Embedding, FlattenConsecutive and BatchNorm1d pass their checks?")
        expected = _run_described(got["layers_after"], X, training=False)
        assert_close(f"{what}: logits in evaluation mode", got["eval_logits"], expected, rtol=1e-4, atol=1e-5,
                     hint=_eval_hint(got["layers_after"], got["layers_after_eval"]))
        if V == 27:
            Y = torch.randint(0, V, (len(X),), generator=_gen(seed))
            loss = F.cross_entropy(got["eval_logits"].double(), Y).item()
            expect(abs(loss - math.log(V)) < 0.05, what,
                   f"the loss of the fresh model is {loss:.4f}, expected within 0.05 of ln {V} = {math.log(V):.4f}",
                   hint="scale the output layer's weight by 0.1")


# --------------------------------------------------------------------- CausalConv1d


def _probe_conv_new(CausalConv1d, args, kwargs, seed):
    conv = CausalConv1d(*args, **kwargs, generator=_gen(seed))
    twin = CausalConv1d(*args, **kwargs, generator=_gen(seed))
    names = ["weight"] + (["bias"] if getattr(conv, "bias", None) is not None else [])
    return _plain({"weight": conv.weight, "bias": getattr(conv, "bias", "missing"), "twin": twin.weight,
                   "attrs": {k: getattr(conv, k, None) for k in ("kernel_size", "dilation", "pad")},
                   "params": _param_info(conv, names), "names": names})


def _probe_conv_run(CausalConv1d, cin, cout, k, d, pad, weight, bias, xs, grads_out, strided=False):
    """Forward and backward on each x; with `strided`, x in (B, C, T) memory order (not contiguous)."""
    conv = CausalConv1d(cin, cout, k, dilation=d, bias=bias is not None, pad=pad)
    conv.weight = weight.clone().requires_grad_()
    conv.bias = None if bias is None else bias.clone().requires_grad_()
    results = []
    for x, g_out in zip(xs, grads_out):
        x = x.clone().requires_grad_()
        conv.weight.grad = None
        if bias is not None:
            conv.bias.grad = None
        out = conv(_channels_first(x) if strided else x)
        if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == g_out.shape:
            (out * g_out).sum().backward()
        results.append({"out": out, "x": x.grad, "weight": conv.weight.grad,
                        "bias": None if bias is None else conv.bias.grad})
    return _plain(results)


def _probe_conv_pair(CausalConv1d, cin, cout, k, d, seed, x, x2):
    conv = CausalConv1d(cin, cout, k, dilation=d, generator=_gen(seed))
    with torch.no_grad():
        return _plain((conv(x), conv(x2)))


def _reference_conv(x, weight, bias, d, pad=True, left=None, right=0, tap_spacing=None):
    """F.conv1d on our (B, T, C) layout; left/right padding and tap spacing can be changed for the hints."""
    k = weight.shape[0]
    spacing = d if tap_spacing is None else tap_spacing
    left = ((k - 1) * d if pad else 0) if left is None else left
    xt = F.pad(x.transpose(1, 2), (left, right))
    y = F.conv1d(xt, weight.permute(2, 1, 0), bias, dilation=spacing).transpose(1, 2)
    return y


def _conv_hint(out, x, weight, bias, d, pad):
    k, T = weight.shape[0], x.shape[1]
    span = (k - 1) * d
    if not pad:
        if out.shape[1] == T:
            return "pad=False means no padding at all: the output has T - (kernel_size - 1) * dilation positions"
        return "pad=False: y[t] = bias + sum_j x[t + j * dilation] @ weight[j]"
    candidates = []
    if span:
        # Right-only padding first: with a single zero (span 1) a symmetric split puts it on the right too.
        candidates += [
            (_reference_conv(x, weight, bias, d, left=0, right=span),
             "the zeros are on the right: pad (kernel_size - 1) * dilation zeros on the left only, so that position "
             "t reads t and earlier" + ("; with one zero to place, a symmetric split also puts it on the right"
                                        if span == 1 else "")),
            (_reference_conv(x, weight, bias, d, left=span // 2, right=span - span // 2),
             "the padding is symmetric: a causal convolution pads (kernel_size - 1) * dilation zeros on the left only"),
            (_reference_conv(x, weight, bias, d, tap_spacing=1, left=k - 1),
             "the dilation is ignored: the taps must be dilation positions apart"),
            (_reference_conv(x, weight, bias, d, tap_spacing=1, left=span)[:, :T],
             "the dilation is applied to the padding only: the taps themselves must be dilation positions apart "
             "(x[t - (k - 1 - j) * dilation])"),
            (_reference_conv(x, weight.flip(0), bias, d),
             "the taps are in reverse order: weight[k - 1] multiplies the current position x[t], weight[0] the "
             "earliest"),
        ]
    shifted = _reference_conv(x, weight, bias, d, left=span + 1)[:, :T]
    candidates += [(shifted, "the output is shifted by one position: y[t] must include x[t] itself"),
                   (_reference_conv(x, weight, bias, d, left=max(span - 1, 0), right=1)[:, :T] if span else shifted,
                    "the output is shifted one position into the future: y[t] may read x[t] but not x[t + 1]")]
    for candidate, hint in candidates:
        if out.shape == candidate.shape and torch.allclose(out.double(), candidate, rtol=1e-4, atol=1e-4):
            return hint
    if out.shape[1] != T:
        return f"pad=True keeps the length: pad (kernel_size - 1) * dilation = {span} zeros on the left"
    return "y[t] = bias + sum_j x[t - (kernel_size - 1 - j) * dilation] @ weight[j], zeros before position 0"


@exercise
def CausalConv1d(CausalConv1d, seed=0):
    what = "CausalConv1d(in_channels, out_channels, kernel_size, dilation, bias, pad, generator)"
    new = CausalConv1d.run(_probe_conv_new, (20, 30, 3), {"dilation": 2}, seed)
    w = new["weight"]
    expect(_is_tensor(w) and tuple(w.shape) == (3, 20, 30) and w.dtype == torch.float32, what,
           f"CausalConv1d(20, 30, 3).weight is {getattr(w, 'dtype', type(w).__name__)} of shape "
           f"{tuple(getattr(w, 'shape', ()))}, expected float32 (kernel_size, in_channels, out_channels) = (3, 20, 30)",
           hint="weight[j] is the (in_channels, out_channels) matrix of tap j")
    _std_close(f"{what}: weight", w, 1 / math.sqrt(60), 0.1,
               hint="divide N(0, 1) by sqrt(kernel_size * in_channels), the fan-in of one output")
    expect(torch.equal(w, new["twin"]), what, "two layers built with generators of the same seed differ",
           hint="pass generator=generator to torch.randn")
    expect(_is_tensor(new["bias"]), what, "with bias=True (the default), self.bias should be a tensor")
    assert_close(f"{what}: bias at creation", new["bias"], torch.zeros(30), rtol=0, atol=0)
    _expect_params(what, new["params"], new["names"], scaled=True)
    assert_equal(f"{what}: attributes (kernel_size, dilation, pad)", new["attrs"],
                 {"kernel_size": 3, "dilation": 2, "pad": True})
    new = CausalConv1d.run(_probe_conv_new, (4, 3, 2), {"dilation": 4, "bias": False, "pad": False}, seed)
    expect(new["bias"] is None, what, "with bias=False, self.bias should be None")
    _expect_params(what, new["params"], ["weight"], scaled=True)

    g = _gen(seed + 1)
    # (B, T, in, out, kernel, dilation, bias, pad): several dilations and kernels, nothing square.
    cases = [(2, 9, 3, 5, 2, 1, True, True), (3, 11, 4, 2, 2, 2, True, True), (1, 10, 2, 3, 3, 2, True, True),
             (2, 12, 5, 4, 2, 4, False, True), (2, 7, 3, 3, 4, 1, True, True), (1, 3, 2, 3, 2, 4, True, True),
             (2, 6, 3, 2, 1, 3, True, True),
             (2, 10, 3, 4, 2, 2, False, False), (1, 9, 2, 5, 3, 3, True, False), (2, 8, 3, 2, 2, 4, True, False)]
    for B, T, cin, cout, k, d, has_bias, pad in cases:
        weight = torch.randn(k, cin, cout, generator=g)
        bias = torch.randn(cout, generator=g) if has_bias else None
        xs = [torch.randn(B, T, cin, generator=g) for _ in range(2)]
        T_out = T if pad else T - (k - 1) * d
        grads_out = [torch.randn(B, T_out, cout, generator=g) for _ in xs]
        # Without padding, as in the lesson's stack, x comes in (B, C, T) memory order: the output of a
        # BatchNorm1d and Tanh after a convolution written with F.conv1d(...).transpose(1, 2).
        strided = not pad
        layout = " (not contiguous: (B, C, T) memory order)" if strided else ""
        try:
            results = CausalConv1d.run(_probe_conv_run, cin, cout, k, d, pad, weight, bias, xs, grads_out, strided)
        except LearnerError as e:
            if _blank_or_timeout(e) or not strided:
                raise
            fail(f"CausalConv1d({cin}, {cout}, kernel_size={k}, dilation={d}, pad={pad}) on x of shape "
                 f"{(B, T, cin)}{layout}", _raised(e),
                 hint="inputs are not always contiguous, and .view refuses them: use .reshape, or index and "
                      "slice x directly")
        for x, g_out, got in zip(xs, grads_out, results):
            where = (f"CausalConv1d({cin}, {cout}, kernel_size={k}, dilation={d}, bias={has_bias}, pad={pad}) "
                     f"on x of shape {(B, T, cin)}{layout}")
            xr, wr = x.double().requires_grad_(), weight.double().requires_grad_()
            br = bias.double().requires_grad_() if has_bias else None
            expected = _reference_conv(xr, wr, br, d, pad=pad)
            out = got["out"]
            hint = _conv_hint(out, x.double(), weight.double(), None if bias is None else bias.double(), d, pad) \
                if _is_tensor(out) and out.ndim == 3 else None
            assert_close(f"{where}: output", out, expected, rtol=1e-4, atol=1e-5, hint=hint)
            (expected * g_out.double()).sum().backward()
            for name, exp in (("x", xr.grad), ("weight", wr.grad)) + ((("bias", br.grad),) if has_bias else ()):
                expect(got[name] is not None, where, f"no gradient reached {name}",
                       hint="compute with torch operations on x, weight and bias (no .detach(), .data or .item())")
                assert_close(f"{where}: gradient with respect to {name}", got[name], exp, rtol=1e-4, atol=1e-5)
    _conv_causal(CausalConv1d)


def _conv_causal(CausalConv1d):
    what = "CausalConv1d"
    failures = []

    @PROPERTY
    @given(st.integers(1, 3), st.integers(2, 12), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4),
           st.sampled_from([1, 2, 3, 4, 8]), st.data())
    def prop(B, T, cin, cout, k, d, data):
        t = data.draw(st.integers(0, T - 2), label="t")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        g = _gen(seed)
        x = torch.randn(B, T, cin, generator=g)
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(B, T - t - 1, cin, generator=g) * 3
        y, y2 = CausalConv1d.run(_probe_conv_pair, cin, cout, k, d, seed, x, x2)
        if not (_is_tensor(y) and _is_tensor(y2) and y.shape == y2.shape and y.shape[:2] == (B, T)):
            failures.append(f"on x of shape {(B, T, cin)} the output has shape {tuple(getattr(y, 'shape', ()))}, "
                            f"expected {(B, T, cout)}")
            raise AssertionError
        if not torch.allclose(y[:, : t + 1], y2[:, : t + 1], rtol=1e-6, atol=1e-6):
            failures.append(f"not causal: CausalConv1d({cin}, {cout}, kernel_size={k}, dilation={d}) on x of shape "
                            f"{(B, T, cin)}: changing positions > {t} changed the output at positions <= {t}")
            raise AssertionError

    try:
        prop()
    except AssertionError:
        fail(what, failures[-1] if failures else "the causality property failed",
             "pad (kernel_size - 1) * dilation zeros on the left only; y[t] reads x[t] and earlier")


# ------------------------------------------------------------------ receptive_field


@exercise
def receptive_field(receptive_field, seed=0):
    what = "receptive_field(kernel_sizes, dilations)"
    g = _gen(seed)
    cases = [([2, 2, 2], [1, 2, 4]), ([], []), ([3], [1]), ([2] * 7, [1] * 7), ([3, 3], [1, 3]),
             ([5, 2, 4], [1, 3, 2]), ([2] * 10, [2**i for i in range(10)]), ([1, 1], [5, 7]), ([4], [6])]
    for _ in range(3):
        n = int(torch.randint(1, 6, (1,), generator=g))
        cases.append((torch.randint(1, 6, (n,), generator=g).tolist(), torch.randint(1, 9, (n,), generator=g).tolist()))
    for ks, ds in cases:
        expected = 1 + sum((k - 1) * d for k, d in zip(ks, ds))
        got = receptive_field(list(ks), list(ds))
        where = f"{what} with kernel_sizes={ks}, dilations={ds}"
        expect(isinstance(got, int) and not isinstance(got, bool), where,
               f"expected an int, got {type(got).__name__} {got!r}", hint="return an int (a count of positions)")
        if got != expected:
            fail(where, f"expected {expected}, got {got}", _receptive_field_hint(receptive_field, ks, ds, got))


# Known mistakes of receptive_field, with their hints; the first that gives the learner's answers wins.
RECEPTIVE_FIELD_MISTAKES = [
    (lambda ks, ds: sum((k - 1) * d for k, d in zip(ks, ds)), "add 1: the output's own position counts"),
    (lambda ks, ds: 1 + sum(ds), "the kernel sizes are ignored: a layer with kernel k and dilation d reaches "
                                 "(k - 1) * d positions back, not d"),
    (lambda ks, ds: 1 + sum(k * d for k, d in zip(ks, ds)),
     "a kernel of k taps, dilation d apart, spans (k - 1) * d positions before the current one"),
    (lambda ks, ds: math.prod(k * d for k, d in zip(ks, ds)), "the reaches of the layers add up, they do not "
                                                               "multiply"),
]


def _receptive_field_hint(receptive_field, ks, ds, got):
    """The known mistake that gives `got` here and the learner's answers on a few cases that tell them apart."""
    generic = "1 + sum over the layers of (kernel_size - 1) * dilation"
    if not ks:
        return "add 1: the output's own position counts (1 for no layers)" if got == 0 else generic
    more = [([5, 3], [1, 4]), ([4], [3]), ([2, 6], [3, 1])]
    try:
        answers = [receptive_field(list(k), list(d)) for k, d in more]
    except LearnerError as e:
        if _blank_or_timeout(e):
            raise
        answers = None
    for formula, hint in RECEPTIVE_FIELD_MISTAKES:
        if got == formula(ks, ds) and answers == [formula(k, d) for k, d in more]:
            return hint
    # Else the first whose answer here is the learner's (the learner's answers elsewhere follow no known one).
    return next((hint for formula, hint in RECEPTIVE_FIELD_MISTAKES if got == formula(ks, ds)), generic)


# ---------------------------------------------------------------- hierarchy_to_conv


def _hierarchy_spec(g, V, E, H, factors, eps=1e-5, momentum=0.1, bias=True):
    """Plain description of a trained-looking hierarchy: random weights, statistics, gains; the BatchNorm
    layers' eps and momentum, and whether the output Linear has a bias, as given."""
    spec = [("Embedding", {"weight": torch.randn(V, E, generator=g)})]
    fan_in = E
    for n in factors:
        spec.append(("FlattenConsecutive", {"n": n}))
        spec.append(("Linear", {"weight": torch.randn(n * fan_in, H, generator=g) * 1.5 / math.sqrt(n * fan_in),
                                "bias": None}))
        spec.append(("BatchNorm1d", {"gamma": 1 + 0.3 * torch.randn(H, generator=g),
                                     "beta": 0.3 * torch.randn(H, generator=g),
                                     "running_mean": 0.5 * torch.randn(H, generator=g),
                                     "running_var": 0.5 + torch.rand(H, generator=g) * 2,
                                     "eps": eps, "momentum": momentum}))
        spec.append(("Tanh", {}))
        fan_in = H
    spec.append(("Linear", {"weight": torch.randn(H, V, generator=g) / math.sqrt(H),
                            "bias": 0.5 * torch.randn(V, generator=g) if bias else None}))
    return spec


def _spec_to_learner_layers(spec, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh):
    """The learner's Sequential of the learner's layers, holding the spec's tensors (learner's side)."""
    layers = []
    for name, a in spec:
        if name == "Embedding":
            layer = Embedding(*a["weight"].shape)
            layer.weight = a["weight"].clone().requires_grad_()
        elif name == "FlattenConsecutive":
            layer = FlattenConsecutive(a["n"])
            layer.n = a["n"]
        elif name == "Linear":
            layer = Linear(*a["weight"].shape, bias=a["bias"] is not None)
            layer.weight = a["weight"].clone().requires_grad_()
            layer.bias = None if a["bias"] is None else a["bias"].clone().requires_grad_()
        elif name == "BatchNorm1d":
            layer = BatchNorm1d(len(a["gamma"]), eps=a["eps"], momentum=a["momentum"])
            layer.gamma, layer.beta = a["gamma"].clone().requires_grad_(), a["beta"].clone().requires_grad_()
            layer.running_mean, layer.running_var = a["running_mean"].clone(), a["running_var"].clone()
        else:
            layer = Tanh()
        layer.training = False
        layers.append(layer)
    hierarchy = Sequential(layers)
    hierarchy.training = False
    return hierarchy


def _probe_transfer(hierarchy_to_conv, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh, spec,
                    token_batches, run=True):
    """The converted stack described; with `run`, also its logits, and what a backward pass through it reaches."""
    try:
        hierarchy = _spec_to_learner_layers(spec, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh)
    except NotImplementedError:
        try:  # a blank hierarchy_to_conv is what to report first, not the blank layer it would have received
            hierarchy_to_conv(None)
        except NotImplementedError:
            raise
        except Exception:  # noqa: BLE001 - it is written: report the blank layer
            pass
        raise
    stack = hierarchy_to_conv(hierarchy)
    out = {"is_sequential": isinstance(getattr(stack, "layers", None), list), "layers": _describe(stack),
           "hierarchy_after": _describe(hierarchy)}
    if not out["is_sequential"] or not run:
        return _plain(out)
    # The stack's parameters that are not leaves (a copy still in the hierarchy's graph).
    out["not_leaves"] = [f"layer {i} ({type(layer).__name__}) {key}" for i, layer in enumerate(stack.layers)
                         for key in ("weight", "bias", "gamma", "beta")
                         if isinstance(getattr(layer, key, None), torch.Tensor) and not getattr(layer, key).is_leaf]
    stack.training = False
    for layer in stack.layers:
        layer.training = False
    with torch.no_grad():
        out["logits"] = [stack(tokens) for tokens in token_batches]
    logits = stack(token_batches[0])  # a backward through the stack must not reach the hierarchy
    if isinstance(logits, torch.Tensor) and logits.requires_grad:
        logits.sum().backward()
    out["reached"] = [f"{type(layer).__name__} {key}" for layer in hierarchy.layers
                      for key, value in vars(layer).items() if isinstance(value, torch.Tensor) and value.is_leaf
                      and value.grad is not None]
    # The stack's own parameters that the same backward pass did not reach: the stack could not be trained.
    out["untrained"] = [f"layer {i} ({type(layer).__name__}) {key}" for i, layer in enumerate(stack.layers)
                        for key in ("weight", "bias", "gamma", "beta")
                        if isinstance(getattr(layer, key, None), torch.Tensor) and getattr(layer, key).is_leaf
                        and getattr(layer, key).grad is None]
    with torch.no_grad():
        for layer in hierarchy.layers:  # change every tensor of the hierarchy: the stack must not notice
            for value in vars(layer).values():
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    value.add_(1.0)
        out["logits_after_change"] = stack(token_batches[0])
    return _plain(out)


def _windows_oracle(spec, tokens, block_size):
    """The hierarchy's eval-mode logits for every window tokens[:, p : p + block_size]: (B, T - block + 1, V)."""
    B, T = tokens.shape
    windows = tokens.unfold(1, block_size, 1).reshape(-1, block_size)
    logits = _run_described(spec, windows, training=False)
    return logits.reshape(B, T - block_size + 1, -1)


def _check_stack_layers(what, got, spec, factors, H):
    """The converted stack's structure against the hierarchy's spec: layer types, each convolution's kernel,
    dilation and weight, the copied tensors, and the hierarchy left as it was."""
    expect(got["is_sequential"], what, "should return a Sequential (with a list of layers in .layers)")
    layers = got["layers"]
    types = ["Embedding"] + ["CausalConv1d", "BatchNorm1d", "Tanh"] * len(factors) + ["Linear"]
    assert_equal(f"{what}: the stack's layer types", [name for name, _ in layers], types,
                 hint="Embedding, then per level CausalConv1d (in place of FlattenConsecutive + Linear), "
                      "BatchNorm1d, Tanh, then the output Linear")
    dilation, level = 1, 0
    for (name, a), i in zip(layers, range(len(layers))):
        if name != "CausalConv1d":
            continue
        n = factors[level]
        where = f"{what}: layer {i}, the convolution of level {level + 1}"
        assert_equal(f"{where}: (kernel_size, dilation, pad)",
                     (a.get("kernel_size"), a.get("dilation"), a.get("pad")), (n, dilation, False),
                     hint="kernel_size = the flatten factor n; dilation = the product of the flatten factors "
                          "before this level; pad=False (the tokens carry the padding)")
        W = spec[2 + 4 * level][1]["weight"]
        assert_close(f"{where}: weight", a.get("weight"), W.view(n, W.shape[0] // n, H), rtol=0, atol=0,
                     hint="weight = linear.weight.view(n, C_in, C_out): tap j is rows j*C_in .. (j+1)*C_in - 1, "
                          "in flattening order")
        expect(a.get("bias") is None, where, f"bias is a {type(a.get('bias')).__name__}, expected None: the "
               "hierarchy's Linear has no bias", hint="bias=False, like the Linear it replaces (parameters() "
               "would list one more tensor)")
        dilation, level = dilation * n, level + 1
    for i, ((name, a), (sname, s)) in enumerate(zip(layers, [layer for layer in spec
                                                             if layer[0] != "FlattenConsecutive"])):
        if name in ("BatchNorm1d", "Embedding") or (name == "Linear" and i == len(layers) - 1):
            for key, value in s.items():
                if _is_tensor(value):
                    assert_close(f"{what}: layer {i} ({name}) {key}", a.get(key), value, rtol=0, atol=0,
                                 hint="copy every tensor of the layer: weights, gains, biases and the running "
                                      "statistics")
                elif value is not None:
                    assert_equal(f"{what}: layer {i} ({name}) {key}", a.get(key), value,
                                 hint="the same eps and momentum as the hierarchy's layer" if name == "BatchNorm1d"
                                 else None)
                else:
                    expect(a.get(key) is None, f"{what}: layer {i} ({name})",
                           f"{key} is a {type(a.get(key)).__name__}, but the hierarchy's layer has no {key}",
                           hint=f"copy the layer as it is: no {key} where it has none (parameters() would list "
                                "one more tensor)")
    for (name, after), (_, before) in zip(got["hierarchy_after"], spec):
        for key, value in before.items():
            if _is_tensor(value):
                assert_close(f"{what}: the hierarchy's {name} {key} after the conversion", after.get(key), value,
                             rtol=0, atol=0, hint="read the hierarchy; do not change it")


@exercise
def hierarchy_to_conv(hierarchy_to_conv, Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh,
                      seed=0):
    g = _gen(seed)
    # Not the default eps and momentum in the last three; the third one's output Linear has no bias. The
    # last one's dilations (1, 3) are neither 2**level nor level + 1, as those of the others happen to be.
    for V, E, H, factors, eps, momentum, bias in ((11, 3, 7, (2, 2, 2), 1e-5, 0.1, True),
                                                  (6, 4, 5, (2, 2), 1e-3, 0.05, True),
                                                  (9, 3, 4, (2, 3), 1e-2, 0.2, False),
                                                  (7, 2, 3, (3, 2), 1e-4, 0.15, True)):
        block_size = math.prod(factors)
        what = f"hierarchy_to_conv(hierarchy) for a hierarchy with flatten factors {list(factors)}"
        spec = _hierarchy_spec(g, V, E, H, factors, eps, momentum, bias)
        tokens = [torch.randint(0, V, (3, block_size + 6), generator=g),
                  torch.cat([torch.zeros(2, block_size - 1, dtype=torch.int64),
                             torch.randint(1, V, (2, 5), generator=g)], dim=1),
                  torch.randint(0, V, (4, block_size), generator=g)]
        classes = (Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh)
        try:
            got = hierarchy_to_conv.run(_probe_transfer, *classes, spec, tokens)
        except LearnerError as e:
            # Running the stack raised: say first what is wrong in the stack's layers (a wrong dilation
            # raises inside a correct CausalConv1d), else the error stands.
            if _blank_or_timeout(e):
                raise
            _check_stack_layers(what, hierarchy_to_conv.run(_probe_transfer, *classes, spec, tokens, False),
                                spec, factors, H)
            raise
        _check_stack_layers(what, got, spec, factors, H)
        layers = got["layers"]
        for toks, logits in zip(tokens, got["logits"]):
            where = f"{what}: the stack's logits in evaluation mode on tokens of shape {tuple(toks.shape)}"
            expected = _windows_oracle(spec, toks, block_size)
            hint = "position p of the output is the hierarchy's prediction for the window tokens[:, p : p + block_size]"
            if _is_tensor(logits) and logits.shape == expected.shape and not torch.allclose(
                    logits.double(), expected.double(), rtol=1e-4, atol=1e-4):
                described = _run_described(layers, toks, training=False)
                if torch.allclose(described.double(), expected.double(), rtol=1e-4, atol=1e-4):
                    hint = ("the stack's layers hold the right weights, but running them gives other numbers: "
                            "do CausalConv1d (pad=False) and BatchNorm1d (evaluation mode, 3-D input) pass their "
                            "checks?")
            assert_close(where, logits, expected, rtol=1e-4, atol=1e-4, hint=hint)
        assert_close(f"{what}: the stack's logits after every tensor of the hierarchy was changed in place",
                     got["logits_after_change"], got["logits"][0], rtol=0, atol=1e-6,
                     hint="copy the tensors (.detach().clone()): the two models must share nothing")
        copies = "copy with .detach().clone(), then .requires_grad_(): a .clone() alone stays in the hierarchy's graph"
        expect(not got["not_leaves"], what, f"the stack's {(got['not_leaves'] or [''])[0]} is not a leaf tensor, so "
               "training the stack gives it no .grad", hint=copies)
        expect(not got["reached"], what, f"a backward pass through the stack reached the hierarchy's "
               f"{(got['reached'] or [''])[0]}: training one model changes the other", hint=copies)
        expect(not got["untrained"], what, f"a backward pass through the stack gave its "
               f"{(got['untrained'] or [''])[0]} no gradient: the converted stack cannot be trained",
               hint=".detach().clone() drops requires_grad: call .requires_grad_() on each copied weight, gain and "
                    "bias (the running statistics stay plain tensors)")
