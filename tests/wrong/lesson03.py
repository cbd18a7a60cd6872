"""Classic mistakes in lesson 03. Each must fail its exercise's check.

Correct Linear, BatchNorm1d and Tanh come first (the wrong deep nets are built
from them); each wrong layer changes one thing.
"""

import math

import torch

# ------------------------------------------------------------ correct layers


class Linear:
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        self.weight = (torch.randn(fan_in, fan_out, generator=generator) * gain / math.sqrt(fan_in)).requires_grad_()
        self.bias = torch.zeros(fan_out, requires_grad=True) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight + (0 if self.bias is None else self.bias)
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d:
    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma = torch.ones(dim, requires_grad=True)
        self.beta = torch.zeros(dim, requires_grad=True)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def stats(self, x):
        """Mean and variance to normalise with (batch ones in training mode)."""
        if not self.training:
            return self.running_mean, self.running_var
        if len(x) < 2:
            raise ValueError("training mode needs more than one example")
        self.update(x.detach())
        return x.mean(0), x.var(0, unbiased=False)

    def update(self, x):
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * x.mean(0)
        self.running_var = (1 - m) * self.running_var + m * x.var(0, unbiased=True)

    def __call__(self, x):
        mean, var = self.stats(x)
        self.out = self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]


class Tanh:
    training = True

    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []


# ----------------------------------------------------------------- init_mlp


def _init(V, T, E, H, g, w1_std, b1=0.01, w2=0.01, rand=torch.randn):
    p = {"C": rand(V, E, generator=g), "W1": rand(T * E, H, generator=g) * w1_std,
         "b1": rand(H, generator=g) * b1, "W2": rand(H, V, generator=g) * w2, "b2": torch.zeros(V)}
    return {k: t.requires_grad_() for k, t in p.items()}


def init_naive(V, T, E, H, g):
    """N(0, 1) everywhere: the initial loss is about 27."""
    p = {"C": torch.randn(V, E, generator=g), "W1": torch.randn(T * E, H, generator=g),
         "b1": torch.randn(H, generator=g), "W2": torch.randn(H, V, generator=g), "b2": torch.randn(V, generator=g)}
    return {k: t.requires_grad_() for k, t in p.items()}


def init_no_gain(V, T, E, H, g):
    return _init(V, T, E, H, g, 1 / math.sqrt(T * E))


def init_fan_out(V, T, E, H, g):
    return _init(V, T, E, H, g, (5 / 3) / math.sqrt(H))


def init_no_sqrt(V, T, E, H, g):
    return _init(V, T, E, H, g, (5 / 3) / (T * E))


def init_big_w2(V, T, E, H, g):
    """W1 right, but the output layer left at N(0, 1): overconfident logits."""
    return _init(V, T, E, H, g, (5 / 3) / math.sqrt(T * E), w2=1.0)


def init_zero_w1(V, T, E, H, g):
    return _init(V, T, E, H, g, 0.0)


def init_uniform(V, T, E, H, g):
    """torch.rand instead of torch.randn."""
    return _init(V, T, E, H, g, (5 / 3) / math.sqrt(T * E), rand=torch.rand)


def init_global_rng(V, T, E, H, g):
    return _init(V, T, E, H, None, (5 / 3) / math.sqrt(T * E))


def init_wrong_order(V, T, E, H, g):
    """Right distributions, drawn in another order than the documented C, W1, b1, W2."""
    def normal(*shape, std):
        return torch.empty(*shape).normal_(0.0, std, generator=g).requires_grad_()

    return {"W2": normal(H, V, std=0.01), "W1": normal(T * E, H, std=(5 / 3) / math.sqrt(T * E)),
            "C": normal(V, E, std=1.0), "b1": normal(H, std=0.01), "b2": torch.zeros(V, requires_grad=True)}


def init_float64(V, T, E, H, g):
    """Right draws, but float64 parameters (the docstring promises float32)."""
    return {k: t.detach().double().requires_grad_() for k, t in _init(V, T, E, H, g, (5 / 3) / math.sqrt(T * E)).items()}


def init_not_leaf(V, T, E, H, g):
    """requires_grad set before scaling: W1 is the result of an operation, not a leaf."""
    p = _init(V, T, E, H, g, 1.0)
    p["W1"] = p["W1"] * (5 / 3) / math.sqrt(T * E)
    return p


# -------------------------------------------------------------- BatchNorm1d


class bn_unbiased_normalise(BatchNorm1d):
    def stats(self, x):
        mean, var = super().stats(x)
        return (mean, x.var(0, unbiased=True)) if self.training else (mean, var)


class bn_wrong_dim(BatchNorm1d):
    """Statistics over the features of each example (dim 1), not over the batch."""

    def stats(self, x):
        if not self.training:
            return self.running_mean, self.running_var
        mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
        with torch.no_grad():
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.mean()
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * x.var(1).mean()
        return mean, var


class bn_updates_in_eval(BatchNorm1d):
    def stats(self, x):
        if not self.training:
            self.update(x.detach())
            return self.running_mean, self.running_var
        return super().stats(x)


class bn_momentum_reversed(BatchNorm1d):
    """running = momentum * running + (1 - momentum) * batch."""

    def update(self, x):
        m = self.momentum
        self.running_mean = m * self.running_mean + (1 - m) * x.mean(0)
        self.running_var = m * self.running_var + (1 - m) * x.var(0, unbiased=True)


class bn_biased_running_var(BatchNorm1d):
    def update(self, x):
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * x.mean(0)
        self.running_var = (1 - m) * self.running_var + m * x.var(0, unbiased=False)


class bn_eps_outside_sqrt(BatchNorm1d):
    def __call__(self, x):
        mean, var = self.stats(x)
        self.out = self.gamma * (x - mean) / (torch.sqrt(var) + self.eps) + self.beta
        return self.out


class bn_eval_uses_batch(BatchNorm1d):
    def stats(self, x):
        if not self.training:
            return x.mean(0), x.var(0, unbiased=False)
        return super().stats(x)


class bn_eval_batch_stats_rejects_one(BatchNorm1d):
    """Batch statistics in both modes (no update in evaluation mode), so an evaluation batch of one raises."""

    def stats(self, x):
        if len(x) < 2:
            raise ValueError("batch statistics need more than one example")
        if self.training:
            self.update(x.detach())
        return x.mean(0), x.var(0, unbiased=False)


class bn_no_error_batch_of_one(BatchNorm1d):
    """Normalises a single example anyway: the output is beta, whatever x."""

    def stats(self, x):
        if self.training and len(x) == 1:
            return x.mean(0), x.var(0, unbiased=False)
        return super().stats(x)


class bn_graph_in_running_stats(BatchNorm1d):
    """Updates the running statistics from the non-detached batch: graphs pile up."""

    def stats(self, x):
        if self.training and len(x) > 1:
            self.update(x)
            return x.mean(0), x.var(0, unbiased=False)
        return super().stats(x)


class bn_detached_stats(BatchNorm1d):
    """Treats the batch statistics as constants: the gradient to x is wrong."""

    def stats(self, x):
        mean, var = super().stats(x)
        return mean.detach(), var.detach()


class bn_running_stats_as_parameters(BatchNorm1d):
    def parameters(self):
        return [self.gamma, self.beta, self.running_mean, self.running_var]


class bn_gamma_no_grad(BatchNorm1d):
    """gamma without requires_grad: the layer never learns its gain."""

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        super().__init__(dim, eps, momentum)
        self.gamma = torch.ones(dim)


class bn_rejects_batch_of_two(BatchNorm1d):
    """A `<= 2` slip: a batch of two has a variance, and nn.BatchNorm1d accepts it."""

    def stats(self, x):
        if self.training and len(x) <= 2:
            raise ValueError("training mode needs more than one example")
        return super().stats(x)


# -------------------------------------------------------------------- Linear


class linear_fan_out(Linear):
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, gain, generator)
        with torch.no_grad():
            self.weight *= math.sqrt(fan_in / fan_out)


class linear_no_sqrt(Linear):
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, gain, generator)
        with torch.no_grad():
            self.weight /= math.sqrt(fan_in)


class linear_ignores_gain(Linear):
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, 1.0, generator)


class linear_transposed(Linear):
    """PyTorch's layout (fan_out, fan_in) with x @ weight.T."""

    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, gain, generator)
        self.weight = self.weight.detach().T.contiguous().requires_grad_()

    def __call__(self, x):
        self.out = x @ self.weight.T + (0 if self.bias is None else self.bias)
        return self.out


class linear_always_bias(Linear):
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, True, gain, generator)


class linear_global_rng(Linear):
    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, gain, None)


class linear_bias_no_grad(Linear):
    """The bias is created without requires_grad: it stays at zero for ever."""

    def __init__(self, fan_in, fan_out, bias=True, gain=1.0, generator=None):
        super().__init__(fan_in, fan_out, bias, gain, generator)
        self.bias = torch.zeros(fan_out) if bias else None


class linear_detached_bias(Linear):
    """The forward pass adds a detached bias: the output is right, the bias gets no gradient."""

    def __call__(self, x):
        self.out = x @ self.weight + (0 if self.bias is None else self.bias.detach())
        return self.out


# ------------------------------------------------------------ build_deep_mlp


def _deep(V, T, E, H, L, g, bias=False, gain=5 / 3, last_gamma=0.1, final_bn=True):
    C = torch.randn(V, E, generator=g).requires_grad_()
    layers, fan_in = [], T * E
    for _ in range(L):
        layers += [Linear(fan_in, H, bias=bias, gain=gain, generator=g), BatchNorm1d(H), Tanh()]
        fan_in = H
    layers.append(Linear(fan_in, V, bias=bias, generator=g))
    if final_bn:
        layers.append(BatchNorm1d(V))
        with torch.no_grad():
            layers[-1].gamma *= last_gamma
    else:
        with torch.no_grad():
            layers[-1].weight *= last_gamma
    return C, layers


def deep_with_bias(V, T, E, H, L, g):
    """A bias in every Linear, although a BatchNorm follows it."""
    return _deep(V, T, E, H, L, g, bias=True)


def deep_no_last_gamma(V, T, E, H, L, g):
    return _deep(V, T, E, H, L, g, last_gamma=1.0)


def deep_gain_one(V, T, E, H, L, g):
    return _deep(V, T, E, H, L, g, gain=1.0)


def deep_no_final_bn(V, T, E, H, L, g):
    return _deep(V, T, E, H, L, g, final_bn=False)


def deep_one_layer_short(V, T, E, H, L, g):
    """Off by one: n_layers - 1 hidden blocks."""
    return _deep(V, T, E, H, L - 1, g)


def deep_c_frozen(V, T, E, H, L, g):
    C, layers = _deep(V, T, E, H, L, g)
    return C.detach(), layers


def deep_output_gain(V, T, E, H, L, g):
    """The output Linear with gain 5/3 too: the last BatchNorm hides the scale of the logits."""
    C, layers = _deep(V, T, E, H, L, g)
    with torch.no_grad():
        layers[-2].weight *= 5 / 3
    return C, layers


def deep_gamma_float(V, T, E, H, L, g):
    """`layers[-1].gamma = 0.1`: a float where a tensor parameter is expected."""
    C, layers = _deep(V, T, E, H, L, g, last_gamma=1.0)
    layers[-1].gamma = 0.1
    return C, layers


def deep_c_uniform(V, T, E, H, L, g):
    """C from torch.rand (uniform on [0, 1)) instead of N(0, 1)."""
    C, layers = _deep(V, T, E, H, L, g)
    return torch.rand(V, E, generator=g).requires_grad_(), layers


def deep_linear_global_rng(V, T, E, H, L, g):
    """C drawn with the generator, the Linear layers without it (from the global random state)."""
    C = torch.randn(V, E, generator=g).requires_grad_()
    layers, fan_in = [], T * E
    for _ in range(L):
        layers += [Linear(fan_in, H, bias=False, gain=5 / 3), BatchNorm1d(H), Tanh()]
        fan_in = H
    layers += [Linear(fan_in, V, bias=False), BatchNorm1d(V)]
    with torch.no_grad():
        layers[-1].gamma *= 0.1
    return C, layers


def deep_from_wrong_linear(V, T, E, H, L, g):
    """A right build_deep_mlp whose Linear (linear_no_sqrt, above) is wrong: the check must blame Linear."""
    C = torch.randn(V, E, generator=g).requires_grad_()
    layers, fan_in = [], T * E
    for _ in range(L):
        layers += [linear_no_sqrt(fan_in, H, bias=False, gain=5 / 3, generator=g), BatchNorm1d(H), Tanh()]
        fan_in = H
    layers += [linear_no_sqrt(fan_in, V, bias=False, generator=g), BatchNorm1d(V)]
    with torch.no_grad():
        layers[-1].gamma *= 0.1
    return C, layers


def deep_shared_linear(V, T, E, H, L, g):
    """The third hidden Linear is the second one again: the list has the right types and sizes, but two
    layers share one weight (its gradient is the sum of both uses)."""
    C, layers = _deep(V, T, E, H, L, g)
    layers[6] = layers[3]
    return C, layers


# -------------------------------------------------------------- diagnostics


def saturation_no_abs(t, threshold=0.97):
    return (t > threshold).float().mean().item()


def saturation_count(t, threshold=0.97):
    return (t.abs() > threshold).sum().item()


def saturation_fixed_threshold(t, threshold=0.97):
    return (t.abs() > 0.97).float().mean().item()


def saturation_at_threshold(t, threshold=0.97):
    """`>=` where the spec says `>`."""
    return (t.abs() >= threshold).float().mean().item()


def saturation_tensor(t, threshold=0.97):
    """Right value, but a 0-d tensor where the docstring promises a float."""
    return (t.abs() > threshold).float().mean()


def saturation_per_column(t, threshold=0.97):
    """The fraction of units saturated on every example (dead units), not of entries."""
    t = t.view(len(t), -1) if t.dim() > 1 else t.view(-1, 1)
    return (t.abs() > threshold).all(0).float().mean().item()


def ratio_mean_abs(param, grad, lr):
    return ((lr * grad).abs().mean() / param.abs().mean()).item()


def ratio_no_lr(param, grad, lr):
    return (grad.std() / param.std()).item()


def ratio_inverted(param, grad, lr):
    return (param.std() / (lr * grad).std()).item()


def ratio_log10(param, grad, lr):
    return ((lr * grad).std() / param.std()).log10().item()


def ratio_tensor(param, grad, lr):
    """Right value, but a 0-d tensor where the docstring promises a float."""
    return (lr * grad).std() / param.std()


def ratio_norm(param, grad, lr):
    return ((lr * grad).norm() / param.norm()).item()


# ------------------------------------------------ recompute_population_stats


def _batches(C, layers, X, batch_size, train=True):
    """Yield, for each consecutive batch, the inputs of the BatchNorm layers (training mode, unless `train` is
    False: then in whatever mode the layers are)."""
    for layer in layers:
        layer.training = layer.training or train
    for i in range(0, len(X) - batch_size + 1, batch_size):
        x, inputs = C[X[i:i + batch_size]].view(batch_size, -1), []
        for layer in layers:
            if hasattr(layer, "running_mean"):
                inputs.append(x.double())
            x = layer(x)
        yield inputs


def _set(layers, stats, eval_after=True):
    bns = [layer for layer in layers if hasattr(layer, "running_mean")]
    for bn, (mean, var) in zip(bns, stats):
        bn.running_mean = mean.float()
        bn.running_var = var.float()
    for layer in layers:
        layer.training = not eval_after


def _gathered(C, layers, X, batch_size, train=True):
    return [torch.cat(a) for a in zip(*_batches(C, layers, X, batch_size, train))]


def pop_biased_var(C, layers, X, batch_size=32):
    with torch.no_grad():
        _set(layers, [(a.mean(0), a.var(0, unbiased=False)) for a in _gathered(C, layers, X, batch_size)])


def pop_mean_of_batch_vars(C, layers, X, batch_size=32):
    """Averages the (biased) batch variances: misses the spread of the batch means."""
    with torch.no_grad():
        per_batch = list(_batches(C, layers, X, batch_size))
        stats = []
        for k in range(len(per_batch[0])):
            means = torch.stack([b[k].mean(0) for b in per_batch])
            variances = torch.stack([b[k].var(0, unbiased=False) for b in per_batch])
            stats.append((means.mean(0), variances.mean(0)))
        _set(layers, stats)


def pop_last_batch(C, layers, X, batch_size=32):
    with torch.no_grad():
        last = list(_batches(C, layers, X, batch_size))[-1]
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in last])


def pop_eval_mode_features(C, layers, X, batch_size=32):
    """Computes the inputs in evaluation mode, i.e. with the stale running statistics."""
    with torch.no_grad():
        for layer in layers:
            layer.training = False
        x, inputs = C[X].view(len(X), -1), []
        for layer in layers:
            if hasattr(layer, "running_mean"):
                inputs.append(x.double())
            x = layer(x)
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in inputs])


def pop_just_forward(C, layers, X, batch_size=32):
    """Runs the batches in training mode and trusts the momentum updates."""
    with torch.no_grad():
        for _ in _batches(C, layers, X, batch_size):
            pass
    for layer in layers:
        layer.training = False


def pop_float64_buffers(C, layers, X, batch_size=32):
    """Stores the float64 statistics as they are: the float32 network then fails in evaluation mode."""
    with torch.no_grad():
        stats = [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X, batch_size)]
    for bn, (mean, var) in zip([layer for layer in layers if hasattr(layer, "running_mean")], stats):
        bn.running_mean, bn.running_var = mean, var
    for layer in layers:
        layer.training = False


def pop_with_grad(C, layers, X, batch_size=32):
    """Runs the batches with gradients enabled: the statistics carry the graph (and require grad)."""
    _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X, batch_size)])


def pop_keeps_incomplete_batch(C, layers, X, batch_size=32):
    """Runs the last, incomplete batch too (the spec says drop it)."""
    with torch.no_grad():
        for layer in layers:
            layer.training = True
        inputs = None
        for i in range(0, len(X), batch_size):
            Xb = X[i:i + batch_size]
            x, mine = C[Xb].view(len(Xb), -1), []
            for layer in layers:
                if hasattr(layer, "running_mean"):
                    mine.append(x.double())
                x = layer(x)
            inputs = [[a] for a in mine] if inputs is None else [a + [m] for a, m in zip(inputs, mine)]
        _set(layers, [(torch.cat(a).mean(0), torch.cat(a).var(0, unbiased=True)) for a in inputs])


def pop_drops_last_full_batch(C, layers, X, batch_size=32):
    """Off by one: range(0, len(X) - batch_size, batch_size) drops the last complete batch."""
    with torch.no_grad():
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X[:-batch_size], batch_size)])


def pop_gathers_outputs(C, layers, X, batch_size=32):
    """Gathers each BatchNorm layer's outputs instead of its inputs."""
    with torch.no_grad():
        for layer in layers:
            layer.training = True
        outs = None
        for i in range(0, len(X) - batch_size + 1, batch_size):
            x, mine = C[X[i:i + batch_size]].view(batch_size, -1), []
            for layer in layers:
                x = layer(x)
                if hasattr(layer, "running_mean"):
                    mine.append(x.double())
            outs = [[a] for a in mine] if outs is None else [a + [m] for a, m in zip(outs, mine)]
        _set(layers, [(torch.cat(a).mean(0), torch.cat(a).var(0, unbiased=True)) for a in outs])


def pop_one_short_batch(C, layers, X, batch_size=32):
    """Off by one the other way: range(0, len(X) - batch_size + 2, batch_size) also runs a last batch that is
    one example short."""
    with torch.no_grad():
        for layer in layers:
            layer.training = True
        inputs = [[] for layer in layers if hasattr(layer, "running_mean")]
        for i in range(0, len(X) - batch_size + 2, batch_size):
            x, k = C[X[i:i + batch_size]].view(len(X[i:i + batch_size]), -1), 0
            for layer in layers:
                if hasattr(layer, "running_mean"):
                    inputs[k].append(x.double())
                    k += 1
                x = layer(x)
        _set(layers, [(torch.cat(a).mean(0), torch.cat(a).var(0, unbiased=True)) for a in inputs])


def pop_keeps_mode(C, layers, X, batch_size=32):
    """Runs the net in whatever mode it comes in: a net in evaluation mode (as after training) normalises
    with its stale running statistics, so every BatchNorm after the first sees the wrong inputs."""
    with torch.no_grad():
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X, batch_size, train=False)])


def pop_float32_sums(C, layers, X, batch_size=32):
    """The reference's running sums of x and x**2, but in float32: sum(x**2) - n * mean**2 loses the
    variance of inputs far from 0."""
    with torch.no_grad():
        sums = None
        for inputs in _batches(C, layers, X, batch_size):
            inputs = [a.float() for a in inputs]
            batch = [(len(a), a.sum(0), (a**2).sum(0)) for a in inputs]
            sums = batch if sums is None else [(n + m, s + t, q + r) for (n, s, q), (m, t, r) in zip(sums, batch)]
        _set(layers, [(s / n, (q - n * (s / n) ** 2) / (n - 1)) for n, s, q in sums])


def pop_left_in_training(C, layers, X, batch_size=32):
    with torch.no_grad():
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X, batch_size)],
             eval_after=False)


WRONG = {
    "init_mlp": [init_naive, init_no_gain, init_fan_out, init_no_sqrt, init_big_w2, init_zero_w1, init_uniform,
                 init_global_rng, init_not_leaf, init_wrong_order, init_float64],
    "BatchNorm1d": [bn_unbiased_normalise, bn_wrong_dim, bn_updates_in_eval, bn_momentum_reversed,
                    bn_biased_running_var, bn_eps_outside_sqrt, bn_eval_uses_batch, bn_eval_batch_stats_rejects_one,
                    bn_no_error_batch_of_one,
                    bn_graph_in_running_stats, bn_detached_stats, bn_running_stats_as_parameters, bn_gamma_no_grad,
                    bn_rejects_batch_of_two],
    "Linear": [linear_fan_out, linear_no_sqrt, linear_ignores_gain, linear_transposed, linear_always_bias,
               linear_global_rng, linear_bias_no_grad, linear_detached_bias],
    "build_deep_mlp": [deep_with_bias, deep_no_last_gamma, deep_gain_one, deep_no_final_bn, deep_one_layer_short,
                       deep_c_frozen, deep_shared_linear, deep_output_gain, deep_gamma_float, deep_c_uniform,
                       deep_linear_global_rng],
    "saturation_fraction": [saturation_no_abs, saturation_count, saturation_fixed_threshold, saturation_per_column,
                            saturation_at_threshold, saturation_tensor],
    "update_to_data_ratio": [ratio_mean_abs, ratio_no_lr, ratio_inverted, ratio_log10, ratio_norm, ratio_tensor],
    "recompute_population_stats": [pop_biased_var, pop_mean_of_batch_vars, pop_last_batch, pop_eval_mode_features,
                                   pop_just_forward, pop_left_in_training, pop_float64_buffers, pop_with_grad,
                                   pop_keeps_incomplete_batch, pop_drops_last_full_batch, pop_gathers_outputs,
                                   pop_keeps_mode, pop_float32_sums, pop_one_short_batch],
}

# ------------------------------------------- correct alternatives (must pass)


def init_normal_(V, T, E, H, g):
    """Another correct init: Tensor.normal_ with the std (the same draws as randn * std), keys in another order."""
    def normal(*shape, std):
        return torch.empty(*shape).normal_(0.0, std, generator=g).requires_grad_()

    C, W1 = normal(V, E, std=1.0), normal(T * E, H, std=(5 / 3) / math.sqrt(T * E))
    b1, W2 = normal(H, std=0.01), normal(H, V, std=0.01)
    return {"W2": W2, "b2": torch.zeros(V, requires_grad=True), "W1": W1, "b1": b1, "C": C}


class bn_in_place(BatchNorm1d):
    """Correct: var_mean with correction=0, running statistics updated in place with lerp_."""

    def stats(self, x):
        if not self.training:
            return self.running_mean, self.running_var
        if x.shape[0] <= 1:
            raise ValueError(f"need more than 1 value per channel in training mode, got {tuple(x.shape)}")
        var, mean = torch.var_mean(x, dim=0, correction=0)
        with torch.no_grad():
            n = x.shape[0]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * n / (n - 1), self.momentum)
        return mean, var


def saturation_two_sided(t, threshold=0.97):
    return (((t < -threshold) | (t > threshold)).sum() / t.numel()).item()


def ratio_biased_std(param, grad, lr):
    return float((lr * grad).std(correction=0) / param.std(correction=0))


def pop_concatenated(C, layers, X, batch_size=32):
    """Correct: keep every input, concatenate, then mean and unbiased variance."""
    with torch.no_grad():
        _set(layers, [(a.mean(0), a.var(0, unbiased=True)) for a in _gathered(C, layers, X, batch_size)])


def deep_correct(V, T, E, H, L, g):
    return _deep(V, T, E, H, L, g)


def deep_var_mean_layers(V, T, E, H, L, g):
    """Correct: the same net from BatchNorm layers written another way (var_mean, in-place running stats)."""
    class BatchNorm1d(bn_in_place):  # the layer types are checked by name
        pass

    C, layers = _deep(V, T, E, H, L, g)
    for i, layer in enumerate(layers):
        if hasattr(layer, "gamma"):
            bn = BatchNorm1d(len(layer.gamma))
            with torch.no_grad():
                bn.gamma.copy_(layer.gamma)
            layers[i] = bn
    return C, layers


def deep_parameters(V, T, E, H, L, g):
    """Correct: every parameter an nn.Parameter (a leaf tensor with requires_grad, as the docstrings ask)."""
    C, layers = _deep(V, T, E, H, L, g)
    for layer in layers:
        for name in ("weight", "bias", "gamma", "beta"):
            if isinstance(getattr(layer, name, None), torch.Tensor):
                setattr(layer, name, torch.nn.Parameter(getattr(layer, name).detach().clone()))
    return torch.nn.Parameter(C.detach().clone()), layers


# build_deep_mlp calls the learner's Linear and BatchNorm1d: its check takes them too (and checks them first).
DEPENDS = {"build_deep_mlp": (Linear, BatchNorm1d)}


# Correct versions, the layers above included, must pass their checks (tests/test_wrong_lesson03.py).
RIGHT = {
    "init_mlp": [init_normal_],
    "BatchNorm1d": [BatchNorm1d, bn_in_place],
    "Linear": [Linear],
    "build_deep_mlp": [deep_correct, deep_var_mean_layers, deep_parameters],
    "saturation_fraction": [saturation_two_sided],
    "update_to_data_ratio": [ratio_biased_std],
    "recompute_population_stats": [pop_concatenated],
}
