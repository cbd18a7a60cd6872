"""Checks of lesson 03 (initialisation, BatchNorm, diagnostics), one per exercise.

Oracles are independent of the lesson: torch.nn.BatchNorm1d (same momentum
and eps) for the forward pass, the running statistics and, through autograd,
the gradients; exact formulas for the initialisation and the diagnostics;
torch.nn layers for the population statistics. No training runs here.

The learner's classes live on the learner's side of the seam: the `_probe_*`
functions below build a layer from plain data, run it (forward, backward,
evaluation mode) and return what it holds and computes (tensors, gradients,
`is_leaf` flags, which attribute each entry of `parameters()` is). Every
expected value is computed here, in the check, never in a probe.
"""

import copy
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.assertions import CheckFailure, assert_close, assert_equal, assert_scalar, expect, fail, judged_alone
from course.grading.handles import LearnerError, Missing, exercise

LN27 = math.log(27)
INITIAL_LOSS_TOLERANCE = 0.05  # |initial loss - ln 27|, as the lesson says
W1_STD_TOLERANCE = 0.05  # relative, as the lesson says


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _is_tensor(x):
    return isinstance(x, torch.Tensor)


def _std_close(what, t, expected, rel, hint):
    """The sample std of t within a relative `rel` of `expected`, and its mean near 0."""
    t = t.detach().double()
    std, mean = t.std().item(), t.mean().item()
    if not abs(std - expected) <= rel * expected:
        fail(what, f"std is {std:.4g}, expected {expected:.4g} (within {rel:.0%})", hint)
    expect(abs(mean) <= 6 * expected / math.sqrt(t.numel()) + 1e-12, what,
           f"mean is {mean:.4g}, expected about 0 (std {expected:.4g})",
           hint="draw from a normal distribution centred on 0: torch.randn, not torch.rand")


def _leaf_param(what, t, name, is_leaf):
    """A trainable tensor: float, a leaf (`is_leaf` as the probe saw it), requiring grad."""
    expect(_is_tensor(t), what, f"{name} should be a torch.Tensor, got {type(t).__name__}")
    expect(t.is_floating_point(), what, f"{name} should be a float tensor, got {t.dtype}")
    expect(is_leaf is True, what, f"{name} is not a leaf tensor, so it gets no .grad",
           hint="scale under torch.no_grad() (or scale first, then call .requires_grad_())")
    expect(t.requires_grad, what, f"{name} does not require grad, so training never changes it",
           hint="create it with requires_grad=True (or call .requires_grad_() after initialising it)")


def _grads_close(what, got, expected, hint_missing, hint_values, rtol=1e-4, atol=1e-5):
    """Gradients that reached the learner's tensors (name -> grad or None) against autograd's reference."""
    for name, exp in expected.items():
        expect(got.get(name) is not None, what, f"no gradient reached {name}", hint=hint_missing)
        assert_close(f"{what}: gradient of a loss with respect to {name}", got[name], exp, rtol=rtol, atol=atol,
                     hint=hint_values)


# ------------------------------------------------------------------- the probes
# Run on the learner's side with the learner's definitions; they return raw
# facts only (the check decides).


def _leaf(t):
    return t.is_leaf if isinstance(t, torch.Tensor) else None


def _snapshot(t):
    """A copy of a tensor as it is now (a later in-place update must not change what is returned)."""
    return t.clone() if isinstance(t, torch.Tensor) else t


def _attrs(obj, names):
    """The attributes of `obj` among `names` that exist, copied as they are now."""
    return {n: _snapshot(getattr(obj, n)) for n in names if hasattr(obj, n)}


def _which(items, obj, names):
    """For each entry of the list `items`, the name of the attribute of `obj` it is (None: none of them);
    the type's name when `items` is not a list."""
    if not isinstance(items, list):
        return type(items).__name__
    return [next((n for n in names if getattr(obj, n, None) is p), None) for p in items]


def _backward(out, w):
    """sum(out * w).backward() when out is a tensor that is part of a graph (else nothing reaches anything)."""
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (out * w).sum().backward()


def _probe_seeded(fn, seed, pick, args, kwargs):
    """fn(*args, **kwargs) after torch.manual_seed(seed) (its result[pick], or its attribute `pick`)."""
    torch.manual_seed(seed)
    result = fn(*args, **kwargs)
    if pick is None:
        return result
    return result[pick] if isinstance(pick, int) else getattr(result, pick)


def _probe_init_mlp(init_mlp, *args):
    """The learner's parameters, and for each whether it is a leaf tensor."""
    params = init_mlp(*args)
    return params, ({k: _leaf(v) for k, v in params.items()} if isinstance(params, dict) else None)


def _set_affine(bn, gamma, beta):
    with torch.no_grad():
        bn.gamma.copy_(gamma)
        bn.beta.copy_(beta)


_BN_ATTRS = ("training", "gamma", "beta", "running_mean", "running_var", "eps", "momentum")


def _probe_bn_fresh(BatchNorm1d, dim):
    """What a new layer holds: its attributes, which of gamma and beta are leaves, what parameters() lists."""
    bn = BatchNorm1d(dim)
    facts = _attrs(bn, _BN_ATTRS)
    facts["leaf"] = {n: _leaf(getattr(bn, n, None)) for n in ("gamma", "beta")}
    facts["parameters"] = _which(bn.parameters(), bn, ("gamma", "beta", "running_mean", "running_var"))
    return facts


def _probe_bn_steps(BatchNorm1d, dim, kwargs, gamma, beta, train_xs, eval_xs):
    """A layer with the given gamma and beta: its output and running statistics after each training
    step (inputs that require grad), then after each call in evaluation mode."""
    bn = BatchNorm1d(dim, **kwargs)
    _set_affine(bn, gamma, beta)
    steps = []
    for x in train_xs:
        out = bn(x.requires_grad_())
        steps.append({"out": _snapshot(out), "out_kept": getattr(bn, "out", None) is out,
                      **_attrs(bn, ("running_mean", "running_var"))})
    bn.training = False
    for x in eval_xs:
        out = bn(x)
        steps.append({"out": _snapshot(out), **_attrs(bn, ("running_mean", "running_var"))})
    return steps


def _probe_bn_grads(BatchNorm1d, dim, gamma, beta, x, w):
    """The gradients of sum(layer(x) * w) (training mode) with respect to x, gamma, beta and each
    entry of parameters()."""
    bn = BatchNorm1d(dim)
    _set_affine(bn, gamma, beta)
    x.requires_grad_()
    _backward(bn(x), w)
    grads = {"x": x.grad, **{n: getattr(getattr(bn, n, None), "grad", None) for n in ("gamma", "beta")}}
    return grads, [getattr(p, "grad", None) for p in bn.parameters()]


def _probe_bn_batch_of_one(BatchNorm1d, x):
    """A new layer, training mode, on a batch of one (expected to raise ValueError)."""
    bn = BatchNorm1d(x.shape[1])
    with warnings.catch_warnings():  # a var() warning before the error is not the point (and stderr costs
        warnings.simplefilter("ignore")  # the points of an nbgrader cell)
        return bn(x)


def _probe_linear(Linear, args, kwargs, bias_value=None, x=None, w=None):
    """A new layer: its weight and bias (bias set to bias_value first, if given), which are leaves,
    what parameters() lists; with x, its output and the gradients of sum(out * w) with respect to x,
    weight, bias and each entry of parameters()."""
    layer = Linear(*args, **kwargs)
    if bias_value is not None:
        with torch.no_grad():
            layer.bias.copy_(bias_value)
    facts = _attrs(layer, ("weight", "bias"))
    facts["leaf"] = {n: _leaf(getattr(layer, n, None)) for n in ("weight", "bias")}
    facts["parameters"] = _which(layer.parameters(), layer, ("weight", "bias"))
    if x is not None:
        x.requires_grad_()
        out = layer(x)
        facts["out"], facts["out_kept"] = _snapshot(out), getattr(layer, "out", None) is out
        _backward(out, w)
        facts["grads"] = {"x": x.grad, **{n: getattr(getattr(layer, n, None), "grad", None)
                                          for n in ("weight", "bias")}}
        facts["parameter_grads"] = [getattr(p, "grad", None) for p in layer.parameters()]
    return facts


def _probe_deep_mlp(build_deep_mlp, args, X, Y):
    """The learner's (C, layers): each layer's type, parameters, leaf flags, weight, gamma and eps; then
    the logits of X (training mode) and the gradients of cross_entropy(logits, Y) for every parameter."""
    result = build_deep_mlp(*args)
    if not (isinstance(result, tuple) and len(result) == 2):
        return {"returned": type(result).__name__, "length": len(result) if isinstance(result, list) else None}
    C, layers = result
    facts = {"C": C, "C_leaf": _leaf(C), "layers": type(layers).__name__}
    if not isinstance(layers, list):
        return facts
    layer_params = [list(layer.parameters()) for layer in layers]
    facts.update(names=[type(layer).__name__ for layer in layers],  # (an nn.Parameter is a Tensor too)
                 param_types=[["Tensor" if isinstance(p, torch.Tensor) else type(p).__name__ for p in ps]
                              for ps in layer_params],
                 gammas=[getattr(layer, "gamma", None) for layer in layers])
    if not isinstance(C, torch.Tensor) or not all(isinstance(p, torch.Tensor) for ps in layer_params for p in ps):
        return facts  # the check says what is not a tensor; nothing below could run
    facts.update(layer_params=layer_params, leaf=[[_leaf(p) for p in ps] for ps in layer_params],
                 weights=[getattr(layer, "weight", None) for layer in layers],
                 eps=[getattr(layer, "eps", None) for layer in layers])
    x = C[X].view(len(X), -1)
    for layer in layers:
        x = layer(x)
    facts["logits"] = x
    if isinstance(x, torch.Tensor) and x.requires_grad:
        F.cross_entropy(x, Y).backward()
    facts["C_grad"] = C.grad
    facts["grads"] = [[p.grad for p in ps] for ps in layer_params]
    return facts


def _probe_seeded_deep_mlp(build_deep_mlp, seed, args):
    """C and every layer's parameters, built after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    C, layers = build_deep_mlp(*args)
    return [C] + [p for layer in layers for p in layer.parameters()]


def _torch_net(spec):
    """torch.nn layers from plain data (see _net_spec)."""
    layers = []
    for kind, *tensors in spec:
        if kind == "Linear":
            layer = nn.Linear(*tensors[0].T.shape, bias=False)
            with torch.no_grad():
                layer.weight.copy_(tensors[0])
        elif kind == "BatchNorm1d":
            layer = nn.BatchNorm1d(len(tensors[0]))
            with torch.no_grad():
                for t, s in zip((layer.weight, layer.bias, layer.running_mean, layer.running_var), tensors):
                    t.copy_(s)
        else:
            layer = nn.Tanh()
        layers.append(layer)
    return layers


def _probe_population_stats(recompute_population_stats, C, spec, X, batch_size, evaluation=False):
    """The learner's function on a torch.nn network built from `spec` (in evaluation mode if `evaluation`):
    what it returned (None or a type's name), then each BatchNorm's running statistics, every weight, and
    every layer's mode."""
    layers = _torch_net(spec)
    if evaluation:
        for layer in layers:
            layer.eval()
    result = recompute_population_stats(C, layers, X, batch_size)
    return {"returned": None if result is None else type(result).__name__,
            "running": [(bn.running_mean, bn.running_var) for bn in layers if isinstance(bn, nn.BatchNorm1d)],
            "weights": [p for layer in layers for p in layer.parameters()],
            "training": [layer.training for layer in layers]}


# ------------------------------------------------------------------------ init_mlp


@exercise
def init_mlp(init_mlp, seed=0):
    what = "init_mlp(vocab_size, block_size, n_embd, n_hidden, generator)"
    V, T, E, H = 27, 4, 16, 300
    params, leaf = init_mlp.run(_probe_init_mlp, V, T, E, H, _gen(seed))
    expect(isinstance(params, dict), what, f"expected a dict of tensors, got {type(params).__name__}")
    assert_equal(f"{what} keys", sorted(params), sorted(["C", "W1", "b1", "W2", "b2"]))
    shapes = {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,)}
    for name, shape in shapes.items():
        _leaf_param(what, params[name], name, leaf[name])
        expect(params[name].dtype == torch.float32, what, f"{name} is {params[name].dtype}, expected torch.float32",
               hint="torch.randn and torch.zeros give float32 by default: no .double() or dtype=")
        expect(tuple(params[name].shape) == shape, what,
               f"{name} has shape {tuple(params[name].shape)}, expected {shape}",
               hint="W1 maps the block_size * n_embd concatenated embeddings to n_hidden units")

    fan_in = T * E
    _std_close(f"{what}: C", params["C"], 1.0, 0.2, hint="C ~ N(0, 1): torch.randn")
    _std_close(f"{what}: W1", params["W1"], (5 / 3) / math.sqrt(fan_in), W1_STD_TOLERANCE,
               hint="Kaiming init for tanh: std = (5/3) / sqrt(fan_in), fan_in = block_size * n_embd")
    _std_close(f"{what}: b1", params["b1"], 0.01, 0.3, hint="b1 = 0.01 * randn: small, but not all equal")
    _std_close(f"{what}: W2", params["W2"], 0.01, 0.2,
               hint="W2 = 0.01 * randn: small logits, so the softmax starts near uniform")
    assert_close(f"{what}: b2", params["b2"], torch.zeros(V), rtol=0, atol=0,
                 hint="b2 = 0: no character is preferred before training")

    # The point of the exercise: the initial loss is that of the uniform guess.
    g = _gen(seed + 1)
    X = torch.randint(0, V, (4000, T), generator=g)
    Y = torch.randint(0, V, (4000,), generator=g)
    with torch.no_grad():
        h = torch.tanh(params["C"][X].view(len(X), -1) @ params["W1"] + params["b1"])
        loss = F.cross_entropy(h @ params["W2"] + params["b2"], Y).item()
    expect(abs(loss - LN27) <= INITIAL_LOSS_TOLERANCE, what,
           f"the initial loss of this model is {loss:.4f}, expected within {INITIAL_LOSS_TOLERANCE} of "
           f"-ln(1/27) = {LN27:.4f}",
           hint="the logits must start near 0: W2 small, b2 zero")

    # Seeded by the generator alone.
    a = init_mlp.run(_probe_seeded, 1, None, (V, T, E, H, _gen(seed + 2)), {})
    b = init_mlp.run(_probe_seeded, 2, None, (V, T, E, H, _gen(seed + 2)), {})
    expect(all(torch.equal(a[k], b[k]) for k in a), what,
           "two generators with the same seed gave different parameters",
           hint="pass generator=generator to every torch.randn")
    c = init_mlp(V, T, E, H, _gen(seed + 3))
    expect(not torch.equal(a["W1"], c["W1"]), what, "different seeds gave the same W1",
           hint="draw with the generator you are given")

    # The documented draw order (C, W1, b1, W2), so that a seed gives the lesson's numbers.
    g = _gen(seed + 4)
    ref = {"C": torch.randn(V, E, generator=g)}
    ref["W1"] = torch.randn(T * E, H, generator=g) * (5 / 3) / math.sqrt(T * E)
    ref["b1"] = torch.randn(H, generator=g) * 0.01
    ref["W2"] = torch.randn(H, V, generator=g) * 0.01
    got = init_mlp(V, T, E, H, _gen(seed + 4))
    for name, expected in ref.items():
        assert_close(f"{what}: {name}, against torch.randn draws in the documented order C, W1, b1, W2",
                     got[name], expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()),
                     hint="draw in the documented order (C, W1, b1, W2), each as "
                          "torch.randn(shape, generator=generator) of the shape in the table, then scale")


# --------------------------------------------------------------------- BatchNorm1d


def _bn_hint_for(out, x, eps, gamma, beta):
    """Name the likely mistake from what the output looks like."""
    xd = x.double()
    guesses = {
        "normalise with the biased variance (unbiased=False / correction=0), as PyTorch does;"
        " the unbiased one goes into running_var only":
            (xd - xd.mean(0)) / torch.sqrt(xd.var(0, unbiased=True) + eps),
        "statistics are per feature: reduce over the batch, dim 0, not over the features (dim 1)":
            (xd - xd.mean(1, keepdim=True)) / torch.sqrt(xd.var(1, unbiased=False, keepdim=True) + eps),
        "eps goes inside the square root: (x - mean) / sqrt(var + eps)":
            (xd - xd.mean(0)) / (xd.var(0, unbiased=False).sqrt() + eps),
    }
    if not _is_tensor(out):
        return "return the output tensor (and keep it in self.out)"
    for hint, xhat in guesses.items():
        if out.shape == xhat.shape and torch.allclose(out.detach().double(), gamma * xhat.detach() + beta,
                                                      rtol=1e-4, atol=1e-4):
            return hint
    return "training mode: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean and biased variance"


def _running_hint(running_mean, running_var, ref, momentum):
    rv, rm = running_var.detach().double(), running_mean.detach().double()
    if rv.shape == ref.running_var.shape and rm.shape == ref.running_mean.shape:
        if not torch.allclose(rm, ref.running_mean.double(), rtol=1e-4, atol=1e-5):
            return (f"running = (1 - momentum) * running + momentum * batch statistic, with momentum={momentum}: "
                    f"the new batch gets the weight momentum")
        return ("running_var keeps the *unbiased* batch variance (PyTorch's convention), "
                "while the output is normalised with the biased one")
    return "running_mean and running_var have one entry per feature: shape (dim,)"


def _which_mode_raised(BatchNorm1d, what, B, args, eval_xs):
    """The training steps raised ValueError, or one of the evaluation-mode calls after them: say which
    (the training steps alone first, then with each evaluation batch added). Returns if none raises."""
    for k in range(len(eval_xs) + 1):
        try:
            BatchNorm1d.run(_probe_bn_steps, *args, eval_xs[:k])
        except LearnerError as e:
            if isinstance(e, Missing) or not e.is_a("ValueError"):
                raise
            if k == 0:
                fail(what, f"training mode on batches of {B} raised ValueError: {e.message}",
                     hint="only a batch of one has no variance: torch.nn.BatchNorm1d accepts two examples or more")
            fail(what, f"evaluation mode on a batch of {len(eval_xs[k - 1])} (after training) raised ValueError: "
                       f"{e.message}",
                 hint="evaluation mode normalises with running_mean and running_var, not with the batch's "
                      "statistics, so any batch size works, one example included")


def _check_bn_against_torch(BatchNorm1d, what, g, B, D, eps, momentum, steps=4):
    """`steps` training steps against nn.BatchNorm1d (output, running statistics), then evaluation mode."""
    kwargs = {"eps": eps, "momentum": momentum}
    ref = nn.BatchNorm1d(D, **kwargs)
    gamma, beta = 1 + 0.5 * torch.randn(D, generator=g), torch.randn(D, generator=g)
    with torch.no_grad():
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    scale = torch.rand(D, generator=g) * 3 + (0.01 if eps >= 0.01 else 0.5)
    shift = torch.randn(D, generator=g) * 4
    train_xs = [torch.randn(B, D, generator=g) * scale + shift for _ in range(steps)]
    eval_xs = [torch.randn(n, D, generator=g) * scale + shift for n in (B + 3, 1)]
    try:
        got = BatchNorm1d.run(_probe_bn_steps, D, kwargs, gamma, beta, train_xs, eval_xs)
    except LearnerError as e:
        if isinstance(e, Missing) or not e.is_a("ValueError"):
            raise
        _which_mode_raised(BatchNorm1d, what, B, (D, kwargs, gamma, beta, train_xs), eval_xs)
        raise

    for step, (x, facts) in enumerate(zip(train_xs, got), 1):
        out = facts["out"]
        with torch.no_grad():
            expected = ref(x)
        assert_close(f"{what}: training-mode output, step {step} (batch {B} x {D}, eps={eps}, momentum={momentum})",
                     out, expected, rtol=1e-4, atol=2e-5, hint=_bn_hint_for(out, x, eps, gamma.double(), beta.double()))
        expect(facts["out_kept"], what, "self.out should hold the last output (the lesson's diagnostics read it)",
               hint="set self.out = ... and return self.out")
        for name in ("running_mean", "running_var"):
            t = facts.get(name)
            expect(_is_tensor(t), what, f"self.{name} should be a tensor, got {type(t).__name__}")
            expect(not t.requires_grad, what, f"{name} requires grad: it is keeping autograd graphs alive",
                   hint="update the running statistics under torch.no_grad() (or from detached statistics)")
            assert_close(f"{what}: {name} after {step} training step(s) (momentum={momentum})", t,
                         getattr(ref, name), rtol=1e-4, atol=1e-5,
                         hint=_running_hint(facts["running_mean"], facts["running_var"], ref, momentum))

    # Evaluation mode: running statistics, untouched; each example on its own.
    ref.eval()
    before = (got[steps - 1]["running_mean"], got[steps - 1]["running_var"])
    for x, facts in zip(eval_xs, got[steps:]):
        n = len(x)
        expect(torch.equal(facts["running_mean"], before[0]) and torch.equal(facts["running_var"], before[1]), what,
               f"evaluation mode changed the running statistics (batch of {n})",
               hint="update running_mean/running_var only when self.training is True")
        with torch.no_grad():
            expected = ref(x)
        assert_close(f"{what}: evaluation-mode output (batch of {n}, eps={eps})", facts["out"], expected,
                     rtol=1e-4, atol=2e-5,
                     hint="evaluation mode normalises with running_mean and running_var, "
                          "not with the statistics of the batch")


@exercise
def BatchNorm1d(BatchNorm1d, seed=0):
    what = "BatchNorm1d"
    g = _gen(seed)

    # A fresh layer.
    bn = BatchNorm1d.run(_probe_bn_fresh, 6)
    expect(bn.get("training") is True, what, "a new layer should be in training mode (training=True)")
    for name, value in (("gamma", 1.0), ("beta", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        t = bn.get(name)
        expect(_is_tensor(t), what, f"self.{name} should be a tensor, got {type(t).__name__}")
        assert_close(f"{what}(6).{name} at creation", t, torch.full((6,), value), rtol=0, atol=0)
    for name in ("gamma", "beta"):
        _leaf_param(what, bn[name], name, bn["leaf"][name])
    expect(bn["parameters"] == ["gamma", "beta"], what, "parameters() should return [self.gamma, self.beta]",
           hint="the running statistics are buffers, not parameters: SGD must not touch them")
    expect(bn.get("eps") == 1e-5 and bn.get("momentum") == 0.1, what,
           "the defaults should be eps=1e-5 and momentum=0.1, as in torch.nn.BatchNorm1d")

    # Training mode, several steps, against PyTorch: non-square batches so a wrong dimension shows,
    # and batches of 2 and 3 (the smallest that have a variance).
    for B, D, eps, momentum in ((12, 5, 1e-5, 0.1), (7, 9, 1e-5, 0.3), (32, 4, 0.1, 0.05), (2, 3, 1e-5, 0.1),
                                (3, 4, 1e-5, 0.2)):
        _check_bn_against_torch(BatchNorm1d, what, g, B, D, eps, momentum)

    # Gradients through the layer (autograd) equal nn.BatchNorm1d's.
    B, D = 10, 6
    ref = nn.BatchNorm1d(D)
    gamma, beta = 1 + 0.5 * torch.randn(D, generator=g), torch.randn(D, generator=g)
    with torch.no_grad():
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    x0 = torch.randn(B, D, generator=g) * 2 + 1
    w = torch.randn(B, D, generator=g)  # a random loss: sum(out) would have zero gradient w.r.t. x
    grads, parameter_grads = BatchNorm1d.run(_probe_bn_grads, D, gamma, beta, x0, w)
    xr = x0.clone().requires_grad_()
    (ref(xr) * w).sum().backward()
    _grads_close(f"{what} (training mode)", grads, {"x": xr.grad, "gamma": ref.weight.grad, "beta": ref.bias.grad},
                 hint_missing="compute the output from x, gamma and beta with torch operations "
                              "(no .item(), .data or .detach())",
                 hint_values="the batch mean and variance are part of the graph: do not detach them in the output path")
    expect(all(gr is not None for gr in parameter_grads), what, "an entry of parameters() got no gradient",
           hint="parameters() returns the very tensors the output is computed from: [self.gamma, self.beta]")

    # A batch of one in training mode has no variance: a clear error, not NaN.
    try:
        out = BatchNorm1d.run(_probe_bn_batch_of_one, torch.randn(1, 4, generator=g))
    except Missing:
        raise
    except LearnerError as e:
        if not e.is_a("ValueError"):
            fail(what, f"a batch of one in training mode raised {e.type_name}: {e.message}",
                 hint="raise ValueError with a message that says why (one example has no batch statistics)")
    else:
        shown = out.flatten()[:4].tolist() if _is_tensor(out) else out
        fail(what, f"a batch of one in training mode returned {shown} instead of an error",
             hint="one example has no variance: raise ValueError, as torch.nn.BatchNorm1d does")


# -------------------------------------------------------------------------- Linear


_HINT_NO_GRAD = ("every parameter must be a leaf tensor with requires_grad=True, used in the forward pass with "
                 "torch operations (no .detach(), .data or .item())")


@exercise
def Linear(Linear, seed=0):
    what = "Linear(fan_in, fan_out, bias, gain, generator)"
    fan_in, fan_out = 400, 300
    for gain in (1.0, 5 / 3):
        f = Linear.run(_probe_linear, (fan_in, fan_out), {"bias": True, "gain": gain, "generator": _gen(seed)})
        W, b = f.get("weight"), f.get("bias")
        _leaf_param(what, W, "weight", f["leaf"]["weight"])
        expect(tuple(W.shape) == (fan_in, fan_out), what, f"weight has shape {tuple(W.shape)}, expected "
               f"{(fan_in, fan_out)}", hint="weight is (fan_in, fan_out) so that the forward pass is x @ weight")
        _std_close(f"{what} weight with gain={gain:.4g}", W, gain / math.sqrt(fan_in), 0.03,
                   hint="Kaiming: std = gain / sqrt(fan_in); fan_in is the number of inputs")
        _leaf_param(what, b, "bias", f["leaf"]["bias"])
        assert_close(f"{what} bias at creation", b, torch.zeros(fan_out), rtol=0, atol=0, hint="the bias starts at 0")
        expect(f["parameters"] == ["weight", "bias"], what, "parameters() should return [self.weight, self.bias]")

    # Forward and backward, against autograd through x @ weight + bias on the layer's own tensors.
    g = _gen(seed + 1)
    bias_value = torch.randn(5, generator=g)
    x = torch.randn(3, 7, generator=g)
    w = torch.randn(3, 5, generator=g)  # a random loss sum(out * w)
    for bias in (True, False):
        f = Linear.run(_probe_linear, (7, 5), {"bias": bias, "generator": _gen(seed + 2)},
                       bias_value if bias else None, x, w)
        if bias:
            expect(f["out_kept"], what, "self.out should hold the last output",
                   hint="set self.out = ... and return self.out")
        else:
            expect(f.get("bias", "missing") is None, what, "with bias=False, self.bias should be None")
            expect(f["parameters"] == ["weight"], what, "with bias=False, parameters() should be [self.weight]")
        W, b = f["weight"].detach().clone().requires_grad_(), (f["bias"].detach().clone().requires_grad_()
                                                               if bias else None)
        xr = x.clone().requires_grad_()
        expected = xr @ W + b if bias else xr @ W
        assert_close(f"{what}: forward" + ("" if bias else " without bias"), f["out"], expected, rtol=1e-5, atol=1e-6,
                     hint="out = x @ weight + bias")
        (expected * w).sum().backward()
        _grads_close(f"{what}" + ("" if bias else " without bias"), f["grads"],
                     {"x": xr.grad, "weight": W.grad, **({"bias": b.grad} if bias else {})},
                     hint_missing=_HINT_NO_GRAD, hint_values="out = x @ weight + bias, with torch operations",
                     rtol=1e-5, atol=1e-6)
        expect(all(gr is not None for gr in f["parameter_grads"]), what, "an entry of parameters() got no gradient",
               hint=_HINT_NO_GRAD)

    a = Linear.run(_probe_seeded, 1, "weight", (20, 10), {"generator": _gen(seed + 3)})
    b = Linear.run(_probe_seeded, 2, "weight", (20, 10), {"generator": _gen(seed + 3)})
    expect(torch.equal(a, b), what, "two generators with the same seed gave different weights",
           hint="pass generator=generator to torch.randn")


# ------------------------------------------------------------------ build_deep_mlp


def _deep_reference(C, names, layer_params, X, Y):
    """Logits and gradients (C first, then every layer's parameters in order) of the same net written
    with torch operations on copies of the learner's parameters: batch statistics, eps=1e-5."""
    leaves = [p.detach().clone().requires_grad_() for p in [C] + [p for ps in layer_params for p in ps]]
    it = iter(leaves[1:])
    x = leaves[0][X].view(len(X), -1)
    for name, ps in zip(names, layer_params):
        mine = [next(it) for _ in ps]
        if name == "Linear":
            x = x @ mine[0] + (mine[1] if len(mine) > 1 else 0)
        elif name == "BatchNorm1d":
            x = mine[0] * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) + mine[1]
        else:
            x = torch.tanh(x)
    F.cross_entropy(x, Y).backward()
    return x.detach(), [p.grad for p in leaves]


@exercise
def build_deep_mlp(build_deep_mlp, linear=None, batchnorm=None, seed=0):
    """`linear` and `batchnorm`: the learner's Linear and BatchNorm1d, which their build_deep_mlp calls;
    when this check fails, theirs run, and a failing one is named (optional: each exercise is judged alone)."""
    try:
        _build_deep_mlp(build_deep_mlp, seed)
    except (CheckFailure, LearnerError) as e:
        judged_alone(globals(), DEEP_MLP, e, [("Linear", linear), ("BatchNorm1d", batchnorm)])
        raise


DEEP_MLP = "build_deep_mlp(vocab_size, block_size, n_embd, n_hidden, n_layers, generator)"


def _build_deep_mlp(build_deep_mlp, seed):
    what = DEEP_MLP
    V, T, E, H, L = 27, 3, 10, 100, 5
    g = _gen(seed + 1)
    X = torch.randint(0, V, (512, T), generator=g)
    Y = torch.randint(0, V, (512,), generator=g)
    f = build_deep_mlp.run(_probe_deep_mlp, (V, T, E, H, L, _gen(seed)), X, Y)
    expect("returned" not in f, what, f"expected a tuple (C, layers), got {f.get('returned')}"
           + (f" of length {f.get('length')}" if f.get("length") is not None else ""), hint="return C, layers")
    C = f["C"]
    _leaf_param(what, C, "C", f["C_leaf"])
    expect(tuple(C.shape) == (V, E), what, f"C has shape {tuple(C.shape)}, expected {(V, E)}")
    _std_close(f"{what}: C", C, 1.0, 0.2, hint="C ~ N(0, 1): torch.randn")
    expect(f["layers"] == "list", what, f"layers should be a list, got {f['layers']}")
    names = f["names"]
    expected_names = ["Linear", "BatchNorm1d", "Tanh"] * L + ["Linear", "BatchNorm1d"]
    assert_equal(f"{what} layer types", names, expected_names,
                 hint="n_layers blocks of Linear(no bias), BatchNorm1d, Tanh, then Linear and BatchNorm1d")
    gamma = f["gammas"][-1]
    expect(_is_tensor(gamma), what, f"the gamma of the last BatchNorm1d should be a tensor, got {type(gamma).__name__}",
           hint="scale the tensor in place, under torch.no_grad(): layers[-1].gamma *= 0.1 "
                "(assigning a number replaces the trained parameter)")
    for i, (name, types) in enumerate(zip(names, f["param_types"])):
        bad = [t for t in types if t != "Tensor"]
        expect(not bad, what, f"layer {i} ({name}).parameters() holds a {bad[0] if bad else ''}, expected tensors",
               hint="every parameter is a tensor that SGD can update in place")
    params = [C] + [p for ps in f["layer_params"] for p in ps]
    leaves = [f["C_leaf"]] + [leaf for ls in f["leaf"] for leaf in ls]
    n_params = sum(p.numel() for p in params)
    n_expected = V * E + T * E * H + (L - 1) * H * H + H * V + 2 * H * L + 2 * V
    expect(n_params == n_expected, what, f"{n_params} parameters, expected {n_expected} "
           f"(47,024 for the lesson's 5 x 100 net)",
           hint="no bias in a Linear followed by BatchNorm: the BatchNorm's beta does its job")
    for p, leaf in zip(params, leaves):
        _leaf_param(what, p, "every parameter (C included)", leaf)
    *hidden, output = [weight for weight, n in zip(f["weights"], names) if n == "Linear"]
    for i, weight in enumerate(hidden):
        fan_in = weight.shape[0]
        _std_close(f"{what}: hidden Linear {i} weight", weight, (5 / 3) / math.sqrt(fan_in), 0.1,
                   hint="the Linear layers before a tanh use gain 5/3")
    _std_close(f"{what}: output Linear weight", output, 1 / math.sqrt(output.shape[0]), 0.1,
               hint="the output Linear (no tanh after it) uses gain 1: std = 1 / sqrt(n_hidden); "
                    "the last BatchNorm would hide a larger scale in the logits, not in the weights")
    assert_close(f"{what}: gamma of the last BatchNorm1d", f["gammas"][-1], torch.full((V,), 0.1),
                 rtol=1e-6, atol=0, hint="scale the last gamma by 0.1 (under torch.no_grad()): a less confident start")

    logits = f["logits"]
    expect(_is_tensor(logits) and tuple(logits.shape) == (len(X), V), what,
           f"the last layer's output should be a ({len(X)}, {V}) tensor of logits, got "
           + (f"shape {tuple(logits.shape)}" if _is_tensor(logits) else type(logits).__name__))
    loss = F.cross_entropy(logits, Y).item()
    expect(abs(loss - LN27) <= INITIAL_LOSS_TOLERANCE, what,
           f"the initial loss (training mode) is {loss:.4f}, expected within {INITIAL_LOSS_TOLERANCE} of "
           f"{LN27:.4f}")
    grads = [f["C_grad"]] + [gr for gs in f["grads"] for gr in gs]
    missing = [i for i, gr in enumerate(grads) if gr is None or not torch.isfinite(gr).all()]
    expect(not missing, what, f"parameters {missing[:5]} (0 is C) got no finite gradient",
           hint="every parameter must be used in the forward pass")

    # The same net written with torch operations on the same parameters: same logits, same gradients.
    try:
        ref_logits, ref_grads = _deep_reference(C, names, f["layer_params"], X, Y)
    except (RuntimeError, IndexError) as e:
        fail(what, f"the net cannot be rebuilt from the layers' parameters() in order ({e})",
             hint="Linear.parameters() is [weight], BatchNorm1d.parameters() is [gamma, beta]: "
                  "make their checks pass first")
    assert_close(f"{what}: logits (training mode) against torch operations with the same parameters", logits,
                 ref_logits, rtol=1e-4, atol=1e-5,
                 hint="the forward pass runs x = C[X].view(len(X), -1), then each layer in order; "
                      "if your Linear or BatchNorm1d fails its check, fix that first")
    for i, (gr, exp) in enumerate(zip(grads, ref_grads)):
        assert_close(f"{what}: gradient of the loss with respect to parameter {i} (0 is C)", gr, exp,
                     rtol=1e-3, atol=1e-4 * float(exp.abs().max()),
                     hint="each layer of the list is a new object with its own parameters (none used twice)")

    a = build_deep_mlp.run(_probe_seeded_deep_mlp, 1, (V, T, E, 8, 2, _gen(seed + 2)))
    b = build_deep_mlp.run(_probe_seeded_deep_mlp, 2, (V, T, E, 8, 2, _gen(seed + 2)))
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if not torch.equal(x, y)]
    expect(not differ, what, "two generators with the same seed gave different "
           + ("C" if differ[:1] == [0] else f"parameters (first: parameter {differ[0] if differ else ''}, 0 is C)"),
           hint="draw everything, C and every Linear's weight, with the generator you are given")


# ---------------------------------------------------------------- diagnostics


@exercise
def saturation_fraction(saturation_fraction, seed=0):
    what = "saturation_fraction(t, threshold)"
    t = torch.tensor([-0.99, -0.5, 0.0, 0.5, 0.98, 0.999, 0.96, -0.975])
    value = saturation_fraction(t)
    expect(isinstance(value, float), what, f"should return a Python float, got {type(value).__name__}",
           hint="end with .item(): the lesson prints and plots the number")
    assert_scalar(f"{what} on {t.tolist()}", value, 0.5, atol=1e-7,
                  hint="count |t| > threshold: a tanh saturates at -1 as much as at +1")
    t = torch.tensor([0.75, -0.75, 0.8, -0.1])  # 0.75 is exact in binary: no rounding decides
    assert_scalar(f"{what} with threshold=0.75 on [0.75, -0.75, 0.8, -0.1] (two values exactly at the threshold)",
                  saturation_fraction(t, 0.75), 0.25, atol=1e-7,
                  hint="strictly greater, |t| > threshold: a value exactly at the threshold is not saturated")
    t = torch.tanh(3 * torch.randn(40, 30, generator=_gen(seed)))
    for threshold in (0.97, 0.5):
        expected = (t.abs() > threshold).double().mean().item()
        assert_scalar(f"{what} on a (40, 30) tensor, threshold={threshold}",
                      saturation_fraction(t, threshold), expected, atol=1e-7,
                      hint="the fraction (0 to 1) of all entries with |t| > threshold: use the threshold argument")
    assert_scalar(f"{what} of zeros", saturation_fraction(torch.zeros(5, 5)), 0.0, atol=0)


@exercise
def update_to_data_ratio(update_to_data_ratio, seed=0):
    what = "update_to_data_ratio(param, grad, lr)"
    g = _gen(seed)
    param = 5 + 0.1 * torch.randn(50, 20, generator=g)  # a large mean: std is not the mean size
    grad = 2 + 0.3 * torch.randn(50, 20, generator=g)
    for lr in (0.1, 0.01):
        expected = (lr * grad.double()).std().item() / param.double().std().item()
        value = update_to_data_ratio(param, grad, lr)
        expect(isinstance(value, float), what, f"should return a Python float, got {type(value).__name__}",
               hint="end with .item(): the lesson takes math.log10 of it at every step")
        hint = "std(lr * grad) / std(param): the spread of the update relative to the spread of the values"
        if isinstance(value, (int, float)) and abs(math.log10(expected) - value) < 1e-4:
            hint = "return the ratio itself; the plot takes log10"
        elif isinstance(value, (int, float)) and value > 0:
            if abs(value * expected - 1) < 1e-3:
                hint = "the update goes on top: std(lr * grad) / std(param), not the inverse"
            elif abs(value - expected / lr) < 1e-3 * expected / lr:
                hint = "the update is lr * grad: multiply by the learning rate"
        assert_scalar(f"{what} with lr={lr}", value, expected, rtol=1e-4, atol=0, hint=hint)


# ------------------------------------------------------ recompute_population_stats


def _tiny_torch_net(g, V, T, E, H):
    C = torch.randn(V, E, generator=g)
    layers = [nn.Linear(T * E, H, bias=False), nn.BatchNorm1d(H), nn.Tanh(),
              nn.Linear(H, H, bias=False), nn.BatchNorm1d(H), nn.Tanh(),
              nn.Linear(H, V, bias=False), nn.BatchNorm1d(V)]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 2 / math.sqrt(layer.in_features))
            if isinstance(layer, nn.BatchNorm1d):
                layer.weight.copy_(1 + 0.3 * torch.randn(layer.num_features, generator=g))
                layer.bias.copy_(0.5 * torch.randn(layer.num_features, generator=g))
                layer.running_mean.fill_(3.0)  # stale estimates, far from the truth
                layer.running_var.fill_(0.1)
    return C, layers


def _net_spec(layers):
    """The torch.nn layers of _tiny_torch_net as plain data, for _torch_net on the learner's side."""
    spec = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            spec.append(("Linear", layer.weight.detach().clone()))
        elif isinstance(layer, nn.BatchNorm1d):
            spec.append(("BatchNorm1d", *(t.detach().clone() for t in (layer.weight, layer.bias, layer.running_mean,
                                                                       layer.running_var))))
        else:
            spec.append(("Tanh",))
    return spec


def _population_oracle(C, layers, X, batch_size, starts=None, outputs=False, training=True):
    """Mean and unbiased variance of each BatchNorm's input over all of X, the network in training mode on
    consecutive batches (a last incomplete one dropped). `starts` (the batches' first rows), `outputs`
    (gather the layers' outputs) and `training` (False: evaluation mode) make the statistics of likely
    mistakes, for the hints."""
    layers = copy.deepcopy(layers)
    inputs = [[] for layer in layers if isinstance(layer, nn.BatchNorm1d)]
    with torch.no_grad():
        for layer in layers:
            layer.train(training)
        for i in range(0, len(X) - batch_size + 1, batch_size) if starts is None else starts:
            Xb = X[i:i + batch_size]
            x, k = C[Xb].view(len(Xb), -1), 0
            for layer in layers:
                y = layer(x)
                if isinstance(layer, nn.BatchNorm1d):
                    inputs[k].append((y if outputs else x).double())
                    k += 1
                x = y
    return [(torch.cat(a).mean(0), torch.cat(a).var(0, unbiased=True)) for a in inputs]


def _population_mistakes(C, layers, X, batch_size):
    """hint -> the statistics a likely mistake gives."""
    N = len(X)
    full = list(range(0, N - batch_size + 1, batch_size))
    mistakes = {"gather each BatchNorm layer's inputs (x just before layer(x)), not its outputs":
                _population_oracle(C, layers, X, batch_size, outputs=True),
                "run the net in training mode (every layer's training = True), whatever mode it comes in: "
                "in evaluation mode each BatchNorm normalises with its stale running statistics":
                _population_oracle(C, layers, X, batch_size, training=False)}
    if N % batch_size:
        mistakes["drop the last, incomplete batch: range(0, len(X) - batch_size + 1, batch_size)"] = \
            _population_oracle(C, layers, X, batch_size, starts=range(0, N, batch_size))
    if len(full) > 1:
        mistakes["use every complete batch: range(0, len(X) - batch_size + 1, batch_size) "
                  "(the last complete batch is missing)"] = \
            _population_oracle(C, layers, X, batch_size, starts=full[:-1])
        mistakes["the mean over all batches of X, not over one batch"] = \
            _population_oracle(C, layers, X, batch_size, starts=full[-1:])
    return mistakes


def _which_mistake(mistakes, k, name, got):
    """The hint of the mistake whose statistic `name` (0: mean, 1: variance) of layer k is `got`."""
    if not _is_tensor(got):
        return None
    for hint, stats in mistakes.items():
        exp = stats[k][name]
        if got.shape == exp.shape and torch.allclose(got.double(), exp, rtol=1e-4, atol=1e-5):
            return hint
    return None


@exercise
def recompute_population_stats(recompute_population_stats, seed=0):
    what = "recompute_population_stats(C, layers, X, batch_size)"
    g = _gen(seed)
    V, T, E, H = 11, 3, 4, 12
    # 100: a last batch of 4, to drop; 63: a last batch one short, to drop too. The last net comes in evaluation
    # mode, as after training, and its embeddings are far from 0 (about 100), where float32 sums of squares lose
    # the variance.
    for N, batch_size, offset, evaluation in ((96, 32, 0.0, False), (120, 8, 0.0, False), (100, 32, 0.0, False),
                                              (63, 16, 100.0, True)):
        C, layers = _tiny_torch_net(g, V, T, E, H)
        C = C + offset
        X = torch.randint(0, V, (N, T), generator=g)
        expected = _population_oracle(C, layers, X, batch_size)
        mistakes = _population_mistakes(C, layers, X, batch_size)
        weights = [p.detach().clone() for layer in layers for p in layer.parameters()]
        buffers = [bn.running_mean.dtype for bn in layers if isinstance(bn, nn.BatchNorm1d)]
        f = recompute_population_stats.run(_probe_population_stats, C, _net_spec(layers), X, batch_size, evaluation)
        expect(f["returned"] is None, what, "should return None: it updates the layers in place")
        running = f["running"]
        for k, ((running_mean, running_var), (mean, var), dtype) in enumerate(zip(running, expected, buffers)):
            where = f"{what}: BatchNorm layer {k} (N={N}, batch_size={batch_size}" + (
                ", the net handed over in evaluation mode, embeddings about 100" if evaluation else "") + ")"
            assert_close(f"{where} running_mean", running_mean, mean, rtol=1e-4, atol=1e-5,
                         hint=_which_mistake(mistakes, k, 0, running_mean)
                         or ("the mean of the layer's input over all of X, the network in training mode, "
                             "batch by batch" if k else "the mean over all examples of X, not of one batch"))
            hint = _which_mistake(mistakes, k, 1, running_var) or \
                "the unbiased variance over all the inputs, not an average of the batch variances"
            if _is_tensor(running_var) and running_var.shape == var.shape and torch.allclose(
                    running_var.double(), var * (N - 1) / N, rtol=1e-4):
                hint = "store the unbiased variance (divide by N - 1), as running_var does"
            elif k and not (_is_tensor(running[0][1]) and running[0][1].shape == expected[0][1].shape
                            and torch.allclose(running[0][1].double(), expected[0][1], rtol=1e-4)):
                hint = "recompute every BatchNorm layer"
            elif offset and not k and _is_tensor(running_var) and running_var.shape == var.shape and torch.allclose(
                    running_var.double(), var, rtol=0.1):
                hint = ("close, but not accurate: accumulate in float64 as the exercise says; in float32, "
                        "sum(x**2) - n * mean**2 loses the variance of inputs far from 0")
            assert_close(f"{where} running_var", running_var, var, rtol=1e-4, atol=1e-5, hint=hint)
            for name, t in (("running_mean", running_mean), ("running_var", running_var)):
                expect(t.dtype == dtype, where, f"{name} is {t.dtype}, the buffer was {dtype}",
                       hint="accumulate in float64, then store back in the buffers' dtype "
                            "(.to(bn.running_mean.dtype)): the float32 network cannot use float64 statistics")
                expect(not t.requires_grad, where, f"{name} requires grad: it was computed with gradients enabled",
                       hint="run the batches under torch.no_grad()")
        expect(all(torch.equal(a, b) for a, b in zip(weights, f["weights"])), what,
               "the weights changed: only the running statistics may be recomputed")
        expect(not any(f["training"]), what, "afterwards every layer should be in evaluation mode (training = False)")
