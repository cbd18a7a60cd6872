"""Checks of lesson 03 (initialisation, BatchNorm, diagnostics), one per exercise.

Oracles are independent of the lesson: torch.nn.BatchNorm1d (same momentum
and eps) for the forward pass, the running statistics and, through autograd,
the gradients; exact formulas for the initialisation and the diagnostics;
torch.nn layers for the population statistics. No training runs here.
"""

import copy
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.assertions import assert_close, assert_equal, assert_scalar, expect, fail

LN27 = math.log(27)


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


def _leaf_param(what, t, name):
    expect(_is_tensor(t), what, f"{name} should be a torch.Tensor, got {type(t).__name__}")
    expect(t.is_floating_point(), what, f"{name} should be a float tensor, got {t.dtype}")
    expect(t.is_leaf, what, f"{name} is not a leaf tensor, so it gets no .grad",
           hint="scale under torch.no_grad() (or scale first, then call .requires_grad_())")


# ------------------------------------------------------------------------ init_mlp


def init_mlp(init_mlp, seed=0):
    what = "init_mlp(vocab_size, block_size, n_embd, n_hidden, generator)"
    V, T, E, H = 27, 4, 16, 300
    params = init_mlp(V, T, E, H, _gen(seed))
    expect(isinstance(params, dict), what, f"expected a dict of tensors, got {type(params).__name__}")
    assert_equal(f"{what} keys", sorted(params), sorted(["C", "W1", "b1", "W2", "b2"]))
    shapes = {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,)}
    for name, shape in shapes.items():
        _leaf_param(what, params[name], name)
        expect(tuple(params[name].shape) == shape, what,
               f"{name} has shape {tuple(params[name].shape)}, expected {shape}",
               hint="W1 maps the block_size * n_embd concatenated embeddings to n_hidden units")
        expect(params[name].requires_grad, what, f"{name} does not require grad",
               hint="call .requires_grad_() on every tensor after initialising it")

    fan_in = T * E
    _std_close(f"{what}: C", params["C"], 1.0, 0.2, hint="C ~ N(0, 1): torch.randn")
    _std_close(f"{what}: W1", params["W1"], (5 / 3) / math.sqrt(fan_in), 0.05,
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
    expect(abs(loss - LN27) <= 0.05, what,
           f"the initial loss of this model is {loss:.4f}, expected within 0.05 of -ln(1/27) = {LN27:.4f}",
           hint="the logits must start near 0: W2 small, b2 zero")

    # Seeded by the generator alone.
    torch.manual_seed(1)
    a = init_mlp(V, T, E, H, _gen(seed + 2))
    torch.manual_seed(2)
    b = init_mlp(V, T, E, H, _gen(seed + 2))
    expect(all(torch.equal(a[k], b[k]) for k in a), what,
           "two generators with the same seed gave different parameters",
           hint="pass generator=generator to every torch.randn")
    c = init_mlp(V, T, E, H, _gen(seed + 3))
    expect(not torch.equal(a["W1"], c["W1"]), what, "different seeds gave the same W1",
           hint="draw with the generator you are given")


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
    for hint, xhat in guesses.items():
        if out.shape == xhat.shape and torch.allclose(out.detach().double(), gamma * xhat.detach() + beta, rtol=1e-4, atol=1e-4):
            return hint
    return "training mode: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean and biased variance"


def _set_affine(bn, gamma, beta):
    with torch.no_grad():
        bn.gamma.copy_(gamma)
        bn.beta.copy_(beta)


def _running_hint(bn, ref, momentum):
    rv, rm = bn.running_var.detach().double(), bn.running_mean.detach().double()
    if rv.shape == ref.running_var.shape and rm.shape == ref.running_mean.shape:
        if not torch.allclose(rm, ref.running_mean.double(), rtol=1e-4, atol=1e-5):
            return (f"running = (1 - momentum) * running + momentum * batch statistic, with momentum={momentum}: "
                    f"the new batch gets the weight momentum")
        return ("running_var keeps the *unbiased* batch variance (PyTorch's convention), "
                "while the output is normalised with the biased one")
    return "running_mean and running_var have one entry per feature: shape (dim,)"


def _check_bn_against_torch(BatchNorm1d, what, g, B, D, eps, momentum, steps=4):
    kwargs = {"eps": eps, "momentum": momentum}
    bn = BatchNorm1d(D, **kwargs)
    ref = nn.BatchNorm1d(D, **kwargs)
    gamma, beta = 1 + 0.5 * torch.randn(D, generator=g), torch.randn(D, generator=g)
    _set_affine(bn, gamma, beta)
    with torch.no_grad():
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    scale = torch.rand(D, generator=g) * 3 + (0.01 if eps >= 0.01 else 0.5)
    shift = torch.randn(D, generator=g) * 4
    for step in range(1, steps + 1):
        x = (torch.randn(B, D, generator=g) * scale + shift).requires_grad_()  # so a graph could leak
        out = bn(x)
        expected = ref(x)
        assert_close(f"{what}: training-mode output, step {step} (batch {B} x {D}, eps={eps}, momentum={momentum})",
                     out, expected, rtol=1e-4, atol=2e-5, hint=_bn_hint_for(out, x, eps, gamma.double(), beta.double()))
        expect(getattr(bn, "out", None) is out, what, "self.out should hold the last output (the lesson's "
               "diagnostics read it)", hint="set self.out = ... and return self.out")
        for name in ("running_mean", "running_var"):
            got = getattr(bn, name)
            expect(not got.requires_grad, what, f"{name} requires grad: it is keeping autograd graphs alive",
                   hint="update the running statistics under torch.no_grad() (or from detached statistics)")
            assert_close(f"{what}: {name} after {step} training step(s) (momentum={momentum})", got,
                         getattr(ref, name), rtol=1e-4, atol=1e-5, hint=_running_hint(bn, ref, momentum))
    return bn, ref, gamma, beta, scale, shift


def BatchNorm1d(BatchNorm1d, seed=0):
    what = "BatchNorm1d"
    g = _gen(seed)

    # A fresh layer.
    bn = BatchNorm1d(6)
    expect(getattr(bn, "training", None) is True, what, "a new layer should be in training mode (training=True)")
    for name, value in (("gamma", 1.0), ("beta", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        t = getattr(bn, name, None)
        expect(_is_tensor(t), what, f"self.{name} should be a tensor, got {type(t).__name__}")
        assert_close(f"{what}(6).{name} at creation", t, torch.full((6,), value), rtol=0, atol=0)
    params = bn.parameters()
    expect(isinstance(params, list) and len(params) == 2 and params[0] is bn.gamma and params[1] is bn.beta,
           what, "parameters() should return [self.gamma, self.beta]",
           hint="the running statistics are buffers, not parameters: SGD must not touch them")
    expect(getattr(bn, "eps", None) == 1e-5 and getattr(bn, "momentum", None) == 0.1, what,
           "the defaults should be eps=1e-5 and momentum=0.1, as in torch.nn.BatchNorm1d")

    # Training mode, several steps, against PyTorch: non-square batches so a wrong dimension shows.
    for B, D, eps, momentum in ((12, 5, 1e-5, 0.1), (7, 9, 1e-5, 0.3), (32, 4, 0.1, 0.05)):
        bn, ref, gamma, beta, scale, shift = _check_bn_against_torch(BatchNorm1d, what, g, B, D, eps, momentum)

        # Evaluation mode: running statistics, untouched; each example on its own.
        bn.training = False
        ref.eval()
        before = (bn.running_mean.clone(), bn.running_var.clone())
        for n in (B + 3, 1):
            x = torch.randn(n, D, generator=g) * scale + shift
            out = bn(x)
            expect(torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1]), what,
                   f"evaluation mode changed the running statistics (batch of {n})",
                   hint="update running_mean/running_var only when self.training is True")
            assert_close(f"{what}: evaluation-mode output (batch of {n}, eps={eps})", out, ref(x),
                         rtol=1e-4, atol=2e-5,
                         hint="evaluation mode normalises with running_mean and running_var, "
                              "not with the statistics of the batch")

    # Gradients through the layer (autograd) equal nn.BatchNorm1d's.
    B, D = 10, 6
    bn, ref = BatchNorm1d(D), nn.BatchNorm1d(D)
    gamma, beta = 1 + 0.5 * torch.randn(D, generator=g), torch.randn(D, generator=g)
    _set_affine(bn, gamma, beta)
    with torch.no_grad():
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    for p in bn.parameters():
        expect(p.is_leaf, what, "gamma and beta must be leaf tensors so that they get a .grad")
        p.requires_grad_(True)
        p.grad = None
    x0 = torch.randn(B, D, generator=g) * 2 + 1
    w = torch.randn(B, D, generator=g)  # a random loss: sum(out) would have zero gradient w.r.t. x
    x, xr = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    (bn(x) * w).sum().backward()
    (ref(xr) * w).sum().backward()
    for name, got, exp in (("x", x.grad, xr.grad), ("gamma", bn.gamma.grad, ref.weight.grad),
                           ("beta", bn.beta.grad, ref.bias.grad)):
        expect(got is not None, what, f"no gradient reached {name}",
               hint="compute the output from x, gamma and beta with torch operations (no .item(), .data or .detach())")
        assert_close(f"{what}: gradient of a loss with respect to {name} (training mode)", got, exp,
                     rtol=1e-4, atol=1e-5,
                     hint="the batch mean and variance are part of the graph: do not detach them in the output path")

    # A batch of one in training mode has no variance: a clear error, not NaN.
    bn = BatchNorm1d(4)
    try:
        with warnings.catch_warnings():  # a var() warning before the error is not the point (and stderr costs
            warnings.simplefilter("ignore")  # the points of an nbgrader cell)
            out = bn(torch.randn(1, 4, generator=g))
    except ValueError:
        pass
    except Exception as e:  # noqa: BLE001 - any other exception is the learner's own bug
        fail(what, f"a batch of one in training mode raised {type(e).__name__}: {e}",
             hint="raise ValueError with a message that says why (one example has no batch statistics)")
    else:
        fail(what, f"a batch of one in training mode returned {out.flatten()[:4].tolist()} instead of an error",
             hint="one example has no variance: raise ValueError, as torch.nn.BatchNorm1d does")


# -------------------------------------------------------------------------- Linear


def Linear(Linear, seed=0):
    what = "Linear(fan_in, fan_out, bias, gain, generator)"
    fan_in, fan_out = 400, 300
    for gain in (1.0, 5 / 3):
        layer = Linear(fan_in, fan_out, bias=True, gain=gain, generator=_gen(seed))
        W, b = getattr(layer, "weight", None), getattr(layer, "bias", None)
        _leaf_param(what, W, "weight")
        expect(tuple(W.shape) == (fan_in, fan_out), what, f"weight has shape {tuple(W.shape)}, expected "
               f"{(fan_in, fan_out)}", hint="weight is (fan_in, fan_out) so that the forward pass is x @ weight")
        _std_close(f"{what} weight with gain={gain:.4g}", W, gain / math.sqrt(fan_in), 0.03,
                   hint="Kaiming: std = gain / sqrt(fan_in); fan_in is the number of inputs")
        _leaf_param(what, b, "bias")
        assert_close(f"{what} bias at creation", b, torch.zeros(fan_out), rtol=0, atol=0, hint="the bias starts at 0")
        params = layer.parameters()
        expect(isinstance(params, list) and len(params) == 2 and params[0] is W and params[1] is b, what,
               "parameters() should return [self.weight, self.bias]")

    g = _gen(seed + 1)
    layer = Linear(7, 5, bias=True, generator=_gen(seed + 2))
    with torch.no_grad():
        layer.bias.copy_(torch.randn(5, generator=g))
    x = torch.randn(3, 7, generator=g)
    out = layer(x)
    assert_close(f"{what}: forward", out, x @ layer.weight + layer.bias, rtol=1e-5, atol=1e-6,
                 hint="out = x @ weight + bias")
    expect(getattr(layer, "out", None) is out, what, "self.out should hold the last output",
           hint="set self.out = ... and return self.out")

    layer = Linear(7, 5, bias=False, generator=_gen(seed + 2))
    expect(getattr(layer, "bias", "missing") is None, what, "with bias=False, self.bias should be None")
    expect(len(layer.parameters()) == 1 and layer.parameters()[0] is layer.weight, what,
           "with bias=False, parameters() should be [self.weight]")
    assert_close(f"{what}: forward without bias", layer(x), x @ layer.weight, rtol=1e-5, atol=1e-6)

    torch.manual_seed(1)
    a = Linear(20, 10, generator=_gen(seed + 3)).weight
    torch.manual_seed(2)
    b = Linear(20, 10, generator=_gen(seed + 3)).weight
    expect(torch.equal(a, b), what, "two generators with the same seed gave different weights",
           hint="pass generator=generator to torch.randn")


# ------------------------------------------------------------------ build_deep_mlp


def build_deep_mlp(build_deep_mlp, seed=0):
    what = "build_deep_mlp(vocab_size, block_size, n_embd, n_hidden, n_layers, generator)"
    V, T, E, H, L = 27, 3, 10, 100, 5
    C, layers = build_deep_mlp(V, T, E, H, L, _gen(seed))
    _leaf_param(what, C, "C")
    expect(tuple(C.shape) == (V, E), what, f"C has shape {tuple(C.shape)}, expected {(V, E)}")
    expect(isinstance(layers, list), what, f"layers should be a list, got {type(layers).__name__}")
    names = [type(layer).__name__ for layer in layers]
    expected_names = ["Linear", "BatchNorm1d", "Tanh"] * L + ["Linear", "BatchNorm1d"]
    assert_equal(f"{what} layer types", names, expected_names,
                 hint="n_layers blocks of Linear(no bias), BatchNorm1d, Tanh, then Linear and BatchNorm1d")
    params = [C] + [p for layer in layers for p in layer.parameters()]
    n_params = sum(p.numel() for p in params)
    n_expected = V * E + T * E * H + (L - 1) * H * H + H * V + 2 * H * L + 2 * V
    expect(n_params == n_expected, what, f"{n_params} parameters, expected {n_expected} "
           f"(47,024 for the lesson's 5 x 100 net)",
           hint="no bias in a Linear followed by BatchNorm: the BatchNorm's beta does its job")
    for p in params:
        _leaf_param(what, p, "every parameter")
        expect(p.requires_grad, what, "every parameter (C included) should require grad")
    hidden = [layer for layer, n in zip(layers, names) if n == "Linear"][:-1]
    for i, layer in enumerate(hidden):
        fan_in = layer.weight.shape[0]
        _std_close(f"{what}: hidden Linear {i} weight", layer.weight, (5 / 3) / math.sqrt(fan_in), 0.1,
                   hint="the Linear layers before a tanh use gain 5/3")
    assert_close(f"{what}: gamma of the last BatchNorm1d", layers[-1].gamma, torch.full((V,), 0.1),
                 rtol=1e-6, atol=0, hint="scale the last gamma by 0.1 (under torch.no_grad()): a less confident start")

    g = _gen(seed + 1)
    X = torch.randint(0, V, (512, T), generator=g)
    Y = torch.randint(0, V, (512,), generator=g)
    x = C[X].view(len(X), -1)
    for layer in layers:
        x = layer(x)
    loss = F.cross_entropy(x, Y)
    expect(abs(loss.item() - LN27) <= 0.05, what,
           f"the initial loss (training mode) is {loss.item():.4f}, expected within 0.05 of {LN27:.4f}")
    loss.backward()
    missing = [i for i, p in enumerate(params) if p.grad is None or not torch.isfinite(p.grad).all()]
    expect(not missing, what, f"parameters {missing[:5]} (0 is C) got no finite gradient",
           hint="every parameter must be used in the forward pass")

    torch.manual_seed(1)
    a, _ = build_deep_mlp(V, T, E, 8, 2, _gen(seed + 2))
    torch.manual_seed(2)
    b, _ = build_deep_mlp(V, T, E, 8, 2, _gen(seed + 2))
    expect(torch.equal(a, b), what, "two generators with the same seed gave different C",
           hint="draw everything with the generator you are given")


# ---------------------------------------------------------------- diagnostics


def saturation_fraction(saturation_fraction, seed=0):
    what = "saturation_fraction(t, threshold)"
    t = torch.tensor([-0.99, -0.5, 0.0, 0.5, 0.98, 0.999, 0.96, -0.975])
    assert_scalar(f"{what} on {t.tolist()}", saturation_fraction(t), 0.5, atol=1e-7,
                  hint="count |t| > threshold: a tanh saturates at -1 as much as at +1")
    t = torch.tanh(3 * torch.randn(40, 30, generator=_gen(seed)))
    for threshold in (0.97, 0.5):
        expected = (t.abs() > threshold).double().mean().item()
        assert_scalar(f"{what} on a (40, 30) tensor, threshold={threshold}", saturation_fraction(t, threshold),
                      expected, atol=1e-7,
                      hint="the fraction (0 to 1) of all entries with |t| > threshold: use the threshold argument")
    assert_scalar(f"{what} of zeros", saturation_fraction(torch.zeros(5, 5)), 0.0, atol=0)


def update_to_data_ratio(update_to_data_ratio, seed=0):
    what = "update_to_data_ratio(param, grad, lr)"
    g = _gen(seed)
    param = 5 + 0.1 * torch.randn(50, 20, generator=g)  # a large mean: std is not the mean size
    grad = 2 + 0.3 * torch.randn(50, 20, generator=g)
    for lr in (0.1, 0.01):
        expected = (lr * grad.double()).std().item() / param.double().std().item()
        value = update_to_data_ratio(param, grad, lr)
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


def _population_oracle(C, layers, X, batch_size):
    """Mean and unbiased variance of each BatchNorm's input over all of X, the
    network in training mode on consecutive batches."""
    layers = copy.deepcopy(layers)
    inputs = [[] for layer in layers if isinstance(layer, nn.BatchNorm1d)]
    with torch.no_grad():
        for layer in layers:
            layer.train()
        for i in range(0, len(X) - batch_size + 1, batch_size):
            Xb = X[i:i + batch_size]
            x, k = C[Xb].view(len(Xb), -1), 0
            for layer in layers:
                if isinstance(layer, nn.BatchNorm1d):
                    inputs[k].append(x.double())
                    k += 1
                x = layer(x)
    return [(torch.cat(a).mean(0), torch.cat(a).var(0, unbiased=True)) for a in inputs]


def recompute_population_stats(recompute_population_stats, seed=0):
    what = "recompute_population_stats(C, layers, X, batch_size)"
    g = _gen(seed)
    V, T, E, H = 11, 3, 4, 12
    for N, batch_size in ((96, 32), (120, 8)):
        C, layers = _tiny_torch_net(g, V, T, E, H)
        X = torch.randint(0, V, (N, T), generator=g)
        expected = _population_oracle(C, layers, X, batch_size)
        weights = [p.detach().clone() for layer in layers for p in layer.parameters()]
        result = recompute_population_stats(C, layers, X, batch_size)
        expect(result is None, what, "should return None: it updates the layers in place")
        bns = [layer for layer in layers if isinstance(layer, nn.BatchNorm1d)]
        for k, (bn, (mean, var)) in enumerate(zip(bns, expected)):
            where = f"{what}: BatchNorm layer {k} (N={N}, batch_size={batch_size})"
            assert_close(f"{where} running_mean", bn.running_mean, mean, rtol=1e-4, atol=1e-5,
                         hint="the mean of the layer's input over all of X, the network in training mode, batch by batch"
                              if k else "the mean over all examples of X, not of one batch")
            hint = "the unbiased variance over all N inputs, not an average of the batch variances"
            if bn.running_var.shape == var.shape and torch.allclose(bn.running_var.double(), var * (N - 1) / N,
                                                                      rtol=1e-4):
                hint = "store the unbiased variance (divide by N - 1), as running_var does"
            elif k and not torch.allclose(bns[0].running_var.double(), expected[0][1], rtol=1e-4):
                hint = "recompute every BatchNorm layer"
            assert_close(f"{where} running_var", bn.running_var, var, rtol=1e-4, atol=1e-5, hint=hint)
        after = [p.detach() for layer in layers for p in layer.parameters()]
        expect(all(torch.equal(a, b) for a, b in zip(weights, after)), what,
               "the weights changed: only the running statistics may be recomputed")
        expect(all(not layer.training for layer in layers), what,
               "afterwards every layer should be in evaluation mode (training = False)")
