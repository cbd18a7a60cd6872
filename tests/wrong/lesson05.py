"""Classic mistakes in lesson 05. Each must fail its exercise's check.

Each family starts from a correct version (RIGHT, which must pass) and changes
one thing: the layers are built by small factories whose options name the
mistake. OTHER_RIGHT holds correct implementations written differently
(one-hot products, unfold plus matmul, loops over positions, float64), which
must pass too.
"""

import math

import torch
import torch.nn.functional as F

# ------------------------------------------------------------------ the layers


class Module:
    training = True

    def parameters(self):
        return []

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)


class Linear(Module):
    def __init__(self, fan_in, fan_out, bias=True, generator=None):
        self.weight = (torch.randn(fan_in, fan_out, generator=generator) / fan_in**0.5).requires_grad_()
        self.bias = torch.zeros(fan_out, requires_grad=True) if bias else None

    def __call__(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class Tanh(Module):
    def __call__(self, x):
        return torch.tanh(x)


def _embedding(draw="randn", flat=False, detach=False, trainable=True):
    class Embedding(Module):
        def __init__(self, num_embeddings, embedding_dim, generator=None):
            if draw == "randn":
                w = torch.randn(num_embeddings, embedding_dim, generator=generator)
            elif draw == "rand":  # uniform on [0, 1): not N(0, 1)
                w = torch.rand(num_embeddings, embedding_dim, generator=generator)
            else:  # ignores the generator
                w = torch.randn(num_embeddings, embedding_dim)
            self.weight = w.requires_grad_() if trainable else w

        def __call__(self, IX):
            out = self.weight[IX.reshape(-1)] if flat else self.weight[IX]
            return out.detach() if detach else out

        def parameters(self):
            return [self.weight]

    return Embedding


class EmbeddingOneHot(Module):
    """Right, differently: a one-hot matrix times the table."""

    def __init__(self, num_embeddings, embedding_dim, generator=None):
        self.weight = torch.randn(num_embeddings, embedding_dim, generator=generator).requires_grad_()

    def __call__(self, IX):
        return F.one_hot(IX, len(self.weight)).to(self.weight.dtype) @ self.weight

    def parameters(self):
        return [self.weight]


class EmbeddingIndexSelect(EmbeddingOneHot):
    """Right, differently: index_select on the flattened indices, reshaped back."""

    def __call__(self, IX):
        return self.weight.index_select(0, IX.reshape(-1)).view(*IX.shape, self.weight.shape[1])


class EmbeddingViewOfIndices(EmbeddingOneHot):
    """Wrong: IX.view(-1) refuses indices that are not contiguous, as the lesson's unfold windows are."""

    def __call__(self, IX):
        return self.weight[IX.view(-1)].view(*IX.shape, self.weight.shape[1])


class EmbeddingOneHotNoClasses(EmbeddingOneHot):
    """Wrong: F.one_hot without num_classes has IX.max() + 1 columns, fewer than the table's rows whenever
    the largest indices do not occur."""

    def __call__(self, IX):
        return F.one_hot(IX).float() @ self.weight


def _flatten(order="right", squeeze="time"):
    class FlattenConsecutive(Module):
        def __init__(self, n):
            self.n = n

        def __call__(self, x):
            B, T, C = x.shape
            n = self.n
            if order == "right":
                x = x.reshape(B, T // n, n * C)
            elif order == "strided":  # group i = positions i, i + T/n, ...
                x = x.reshape(B, n, T // n, C).transpose(1, 2).reshape(B, T // n, n * C)
            elif order == "interleaved":  # channels alternate instead of whole vectors
                x = x.reshape(B, T // n, n, C).transpose(2, 3).reshape(B, T // n, n * C)
            elif order == "view":  # refuses a non-contiguous input, as the Embedding of unfold windows is
                x = x.view(B, T // n, n * C)
            elif order == "contiguous_view":  # right: a copy where needed, then a view
                x = x.contiguous().view(B, T // n, n * C)
            if squeeze == "time" and x.shape[1] == 1:
                x = x.squeeze(1)
            elif squeeze == "all":  # also drops a batch of one
                x = x.squeeze()
            return x

    return FlattenConsecutive


class FlattenConsecutiveOtherName(Module):
    """Right output, but the factor stored as .group, not the documented .n: hierarchy_to_conv reads layer.n."""

    def __init__(self, n):
        self.group = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.reshape(B, T // self.group, self.group * C)
        return x.squeeze(1) if x.shape[1] == 1 else x


class FlattenConsecutiveCat(Module):
    """Right, differently: concatenating slices, then dropping the time dimension by indexing."""

    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        parts = [x[:, j::self.n] for j in range(self.n)]  # position i*n + j of each group
        out = torch.cat(parts, dim=-1)
        return out[:, 0] if out.shape[1] == 1 else out


def _batchnorm(dims="all", unbiased_norm=False, update_in_eval=False, momentum_reversed=False, stored_var="unbiased"):
    class BatchNorm1d(Module):
        def __init__(self, dim, eps=1e-5, momentum=0.1):
            self.eps, self.momentum = eps, momentum
            self.gamma = torch.ones(dim, requires_grad=True)
            self.beta = torch.zeros(dim, requires_grad=True)
            self.running_mean = torch.zeros(dim)
            self.running_var = torch.ones(dim)

        def __call__(self, x):
            reduce = tuple(range(x.ndim - 1)) if dims == "all" else 0
            mean = x.mean(reduce)
            var = x.var(reduce, unbiased=unbiased_norm)
            if self.training or update_in_eval:
                m = 1 - self.momentum if momentum_reversed else self.momentum
                with torch.no_grad():
                    v = x.var(reduce, unbiased=stored_var == "unbiased")
                    self.running_mean = (1 - m) * self.running_mean + m * mean
                    self.running_var = (1 - m) * self.running_var + m * v
            if not self.training:
                mean, var = self.running_mean, self.running_var
            return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta

        def parameters(self):
            return [self.gamma, self.beta]

    return BatchNorm1d


class BatchNorm1dFlat(Module):
    """Right, differently: flatten to (N, C), float64 statistics by hand, reshape back."""

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.gamma = torch.ones(dim, requires_grad=True)
        self.beta = torch.zeros(dim, requires_grad=True)
        self.running_mean = torch.zeros(dim)
        self.running_var = torch.ones(dim)

    def __call__(self, x):
        flat = x.reshape(-1, x.shape[-1]).double()
        if self.training:
            n = flat.shape[0]
            mean = flat.sum(0) / n
            var = ((flat - mean) ** 2).sum(0) / n
            with torch.no_grad():
                self.running_mean = (self.running_mean * (1 - self.momentum) + mean * self.momentum).float()
                self.running_var = (self.running_var * (1 - self.momentum) + var * n / (n - 1) * self.momentum).float()
        else:
            mean, var = self.running_mean.double(), self.running_var.double()
        y = (flat - mean) * torch.rsqrt(var + self.eps) * self.gamma.double() + self.beta.double()
        return y.float().reshape(x.shape)

    def parameters(self):
        return [self.gamma, self.beta]


class BatchNorm1dViewFlat(BatchNorm1dFlat):
    """Wrong: flattens a 3-D input with .view, which refuses the (B, C, T) memory order that a
    CausalConv1d built on F.conv1d(...).transpose(1, 2) returns in the lesson's stack."""

    def __call__(self, x):
        return super().__call__(x.view(-1, x.shape[-1])).view(x.shape)


class BatchNorm1dInPlace(BatchNorm1dFlat):
    """Right, differently: the running statistics updated in place, as torch.nn.BatchNorm1d does
    (mul_ and add_ for the mean, lerp_ for the variance)."""

    def __call__(self, x):
        dims = tuple(range(x.ndim - 1))
        if self.training:
            mean, var = x.mean(dims), x.var(dims, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.lerp_(x.var(dims, unbiased=True), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


def _sequential(train_reaches="all", params="all", returns_self=True):
    class Sequential(Module):
        def __init__(self, layers):
            self.layers = layers

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

        def parameters(self):
            if params == "all":
                return [p for layer in self.layers for p in layer.parameters()]
            # only the layers that hold a weight themselves: a nested container is skipped
            return [p for layer in self.layers if not hasattr(layer, "layers") for p in layer.parameters()]

        def train(self, mode=True):
            self.training = mode
            for layer in self.layers:
                if train_reaches == "all":
                    layer.train(mode)
                else:  # the flag of the direct children only
                    layer.training = mode
            return self if returns_self else None

    return Sequential


def _conv(left="causal", spacing="dilation", shift=0, flip=False, pad_false="right"):
    class CausalConv1d(Module):
        def __init__(self, in_channels, out_channels, kernel_size, dilation=1, bias=True, pad=True, generator=None):
            self.kernel_size, self.dilation, self.pad = kernel_size, dilation, pad
            w = torch.randn(kernel_size, in_channels, out_channels, generator=generator)
            self.weight = (w / (kernel_size * in_channels) ** 0.5).requires_grad_()
            self.bias = torch.zeros(out_channels, requires_grad=True) if bias else None

        def __call__(self, x):
            k, d = self.kernel_size, self.dilation
            step = d if spacing == "dilation" else 1
            T = x.shape[1]
            if self.pad:
                span = (k - 1) * d
                lp, rp = {"causal": (span, 0), "symmetric": (span // 2, span - span // 2), "right": (0, span)}[left]
                lp += shift
                x = F.pad(x, (0, 0, lp, rp))
                T_out = T
            else:
                T_out = T - (k - 1) * d if pad_false == "right" else T
                if pad_false != "right":
                    x = F.pad(x, (0, 0, (k - 1) * d, 0))
            w = self.weight.flip(0) if flip else self.weight
            out = sum(x[:, j * step: j * step + T_out] @ w[j] for j in range(k))
            return out if self.bias is None else out + self.bias

        def parameters(self):
            return [self.weight] + ([] if self.bias is None else [self.bias])

    return CausalConv1d


class CausalConv1dUnfold(Module):
    """Right, differently: unfold the padded input into windows, one matmul."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, bias=True, pad=True, generator=None):
        self.kernel_size, self.dilation, self.pad = kernel_size, dilation, pad
        w = torch.randn(kernel_size, in_channels, out_channels, generator=generator)
        self.weight = (w / math.sqrt(kernel_size * in_channels)).requires_grad_()
        self.bias = torch.zeros(out_channels, requires_grad=True) if bias else None

    def __call__(self, x):
        k, d = self.kernel_size, self.dilation
        span = (k - 1) * d
        if self.pad:
            x = torch.cat([x.new_zeros(x.shape[0], span, x.shape[2]), x], dim=1)
        windows = x.unfold(1, span + 1, 1)[..., ::d]  # (B, T_out, C_in, k)
        out = torch.einsum("btck,kco->bto", windows, self.weight)
        return out if self.bias is None else out + self.bias

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class CausalConv1dProjectThenShift(CausalConv1dUnfold):
    """Wrong: projects every position by every tap first (x.view(B * T, C_in)), then adds the shifted
    projections; .view refuses an input that is not contiguous, as the lesson's stack can hand over."""

    def __call__(self, x):
        k, d = self.kernel_size, self.dilation
        if self.pad:
            x = F.pad(x, (0, 0, (k - 1) * d, 0))
        B, T, C = x.shape
        T_out = T - (k - 1) * d
        taps = [(x.view(B * T, C) @ self.weight[j]).view(B, T, -1) for j in range(k)]
        out = sum(taps[j][:, j * d: j * d + T_out] for j in range(k))
        return out if self.bias is None else out + self.bias


class CausalConv1dLoop(Module):
    """Right, differently: a loop over output positions and taps, in float64, with F.conv1d nowhere."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, bias=True, pad=True, generator=None):
        self.kernel_size, self.dilation, self.pad = kernel_size, dilation, pad
        w = torch.randn(kernel_size, in_channels, out_channels, generator=generator)
        self.weight = (w / math.sqrt(kernel_size * in_channels)).requires_grad_()
        self.bias = torch.zeros(out_channels, requires_grad=True) if bias else None

    def __call__(self, x):
        k, d = self.kernel_size, self.dilation
        B, T, _ = x.shape
        positions = range(T) if self.pad else range((k - 1) * d, T)
        cols = []
        for t in positions:
            y = torch.zeros(B, self.weight.shape[2], dtype=torch.float64)
            for j in range(k):
                s = t - (k - 1 - j) * d
                if s >= 0:
                    y = y + x[:, s].double() @ self.weight[j].double()
            if self.bias is not None:
                y = y + self.bias.double()
            cols.append(y)
        return torch.stack(cols, dim=1).float()

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class CausalConv1dTorch(CausalConv1dUnfold):
    """Right, differently: F.conv1d on the transposed, left-padded input."""

    def __call__(self, x):
        k, d = self.kernel_size, self.dilation
        xt = x.transpose(1, 2)
        if self.pad:
            xt = F.pad(xt, ((k - 1) * d, 0))
        return F.conv1d(xt, self.weight.permute(2, 1, 0), self.bias, dilation=d).transpose(1, 2)


Embedding = _embedding()
FlattenConsecutive = _flatten()
BatchNorm1d = _batchnorm()
Sequential = _sequential()
CausalConv1d = _conv()

# ---------------------------------------------------------------- the functions


def receptive_field_right(kernel_sizes, dilations):
    return 1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations))


def receptive_field_loop(kernel_sizes, dilations):
    """Right, differently: follow the earliest input position back through the layers."""
    earliest = 0
    for k, d in reversed(list(zip(kernel_sizes, dilations))):
        earliest -= (k - 1) * d
    return 1 - earliest


def receptive_field_no_plus_one(kernel_sizes, dilations):
    return sum((k - 1) * d for k, d in zip(kernel_sizes, dilations))


def receptive_field_k_times_d(kernel_sizes, dilations):
    return 1 + sum(k * d for k, d in zip(kernel_sizes, dilations))


def receptive_field_ignores_kernel_sizes(kernel_sizes, dilations):
    """Counts d per layer, as if every kernel had two taps."""
    return 1 + sum(dilations)


def receptive_field_float(kernel_sizes, dilations):
    return float(1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations)))


def _build(bias=False, scale=0.1, factor=2, bn=BatchNorm1d):
    def build_hierarchy(vocab_size, block_size, n_embd, n_hidden, generator=None):
        layers = [Embedding(vocab_size, n_embd, generator=generator)]
        fan_in = n_embd
        for _ in range(round(math.log(block_size, factor))):
            layers += [FlattenConsecutive(factor), Linear(factor * fan_in, n_hidden, bias=bias, generator=generator),
                       bn(n_hidden), Tanh()]
            fan_in = n_hidden
        layers.append(Linear(n_hidden, vocab_size, generator=generator))
        with torch.no_grad():
            layers[-1].weight *= scale
        return Sequential(layers)

    return build_hierarchy


def build_hierarchy_output_first(vocab_size, block_size, n_embd, n_hidden, generator=None):
    """Right layers, but the output Linear is created (draws its weight) before the others."""
    out = Linear(n_hidden, vocab_size, generator=generator)
    with torch.no_grad():
        out.weight *= 0.1
    layers = [Embedding(vocab_size, n_embd, generator=generator)]
    fan_in = n_embd
    for _ in range(round(math.log2(block_size))):
        layers += [FlattenConsecutive(2), Linear(2 * fan_in, n_hidden, bias=False, generator=generator),
                   BatchNorm1d(n_hidden), Tanh()]
        fan_in = n_hidden
    return Sequential(layers + [out])


def build_hierarchy_flat_weights(vocab_size, block_size, n_embd, n_hidden, generator=None):
    """Right structure, but the output layer scaled after becoming a non-leaf (scaled outside no_grad)."""
    model = _build(scale=1.0)(vocab_size, block_size, n_embd, n_hidden, generator)
    model.layers[-1].weight = model.layers[-1].weight * 0.1
    return model


def build_hierarchy_three_levels(vocab_size, block_size, n_embd, n_hidden, generator=None):
    """Three levels whatever block_size is: right for 8 only."""
    layers = [Embedding(vocab_size, n_embd, generator=generator)]
    fan_in = n_embd
    for _ in range(3):
        layers += [FlattenConsecutive(2), Linear(2 * fan_in, n_hidden, bias=False, generator=generator),
                   BatchNorm1d(n_hidden), Tanh()]
        fan_in = n_hidden
    layers.append(Linear(n_hidden, vocab_size, generator=generator))
    with torch.no_grad():
        layers[-1].weight *= 0.1
    return Sequential(layers)


def build_hierarchy_bn_updates_in_eval(vocab_size, block_size, n_embd, n_hidden, generator=None):
    return _build(bn=_batchnorm(update_in_eval=True))(vocab_size, block_size, n_embd, n_hidden, generator)


def build_hierarchy_per_position_bn(vocab_size, block_size, n_embd, n_hidden, generator=None):
    return _build(bn=_batchnorm(dims="first"))(vocab_size, block_size, n_embd, n_hidden, generator)


def _to_conv(dilation_rule="product", view="right", share=False, pad=False, conv=None, detach=True,
             bn_defaults=False, output_bias="copy", conv_bias=False, trainable=True):
    conv_class = conv or CausalConv1d

    def hierarchy_to_conv(hierarchy):
        def copy(t):
            if share:
                return t
            t2 = (t.detach() if detach else t).clone()
            return t2.requires_grad_(t.requires_grad) if trainable else t2

        layers, dilation, n, level = [], 1, None, 0
        for layer in hierarchy.layers:
            kind = type(layer).__name__
            if kind == "Embedding":
                emb = Embedding(*layer.weight.shape)
                emb.weight = copy(layer.weight)
                layers.append(emb)
            elif kind == "FlattenConsecutive":
                n = layer.n
            elif kind == "Linear" and n is not None:
                C_in, C_out = layer.weight.shape[0] // n, layer.weight.shape[1]
                d = {"product": dilation, "one": 1, "level": level + 1, "with_own": dilation * n,
                     "pow2": 2 ** level}[dilation_rule]
                c = conv_class(C_in, C_out, n, dilation=d, bias=conv_bias, pad=pad)
                if view == "right":
                    c.weight = copy(layer.weight.view(n, C_in, C_out))
                else:  # reads the rows as (C_in, n): channel-major, the taps interleaved
                    c.weight = copy(layer.weight.view(C_in, n, C_out).transpose(0, 1).contiguous())
                layers.append(c)
                dilation, n, level = dilation * n, None, level + 1
            elif kind == "Linear":
                out = Linear(*layer.weight.shape)  # a zero bias, replaced below
                out.weight = copy(layer.weight)
                if layer.bias is not None or output_bias == "copy":
                    out.bias = None if layer.bias is None else copy(layer.bias)
                layers.append(out)
            elif kind == "BatchNorm1d":
                bn = (BatchNorm1d(len(layer.gamma)) if bn_defaults else
                      BatchNorm1d(len(layer.gamma), eps=layer.eps, momentum=layer.momentum))
                bn.gamma, bn.beta = copy(layer.gamma), copy(layer.beta)
                bn.running_mean, bn.running_var = copy(layer.running_mean), copy(layer.running_var)
                layers.append(bn)
            elif kind == "Tanh":
                layers.append(Tanh())
        return Sequential(layers)

    return hierarchy_to_conv


def hierarchy_to_conv_fresh_stats(hierarchy):
    """Copies the weights but leaves the BatchNorm statistics at their initial values."""
    stack = _to_conv()(hierarchy)
    for layer in stack.layers:
        if isinstance(layer, BatchNorm1d):
            layer.running_mean, layer.running_var = torch.zeros_like(layer.gamma), torch.ones_like(layer.gamma)
    return stack


def _named(f, name):
    f.__name__ = name
    return f


RIGHT = {
    "Embedding": Embedding,
    "FlattenConsecutive": FlattenConsecutive,
    "BatchNorm1d": BatchNorm1d,
    "Sequential": Sequential,
    "build_hierarchy": _named(_build(), "build_hierarchy_right"),
    "CausalConv1d": CausalConv1d,
    "receptive_field": receptive_field_right,
    "hierarchy_to_conv": _named(_to_conv(), "hierarchy_to_conv_right"),
}

OTHER_RIGHT = {
    "Embedding": [EmbeddingOneHot, EmbeddingIndexSelect],
    "FlattenConsecutive": [FlattenConsecutiveCat, _named(_flatten(order="contiguous_view"), "FlattenContiguousView")],
    "BatchNorm1d": [BatchNorm1dFlat, BatchNorm1dInPlace],
    "CausalConv1d": [CausalConv1dUnfold, CausalConv1dLoop, CausalConv1dTorch],
    "receptive_field": [receptive_field_loop],
    "hierarchy_to_conv": [_named(_to_conv(conv=type("CausalConv1d", (CausalConv1dUnfold,), {})),
                                 "hierarchy_to_conv_unfold_conv")],
}

WRONG = {
    "Embedding": [
        _named(_embedding(draw="rand"), "embedding_uniform_init"),
        _named(_embedding(draw="global"), "embedding_ignores_generator"),
        _named(_embedding(flat=True), "embedding_flattens_indices"),
        _named(_embedding(detach=True), "embedding_detached"),
        _named(EmbeddingOneHotNoClasses, "embedding_one_hot_without_num_classes"),
        _named(EmbeddingViewOfIndices, "embedding_view_of_indices"),
        _named(_embedding(trainable=False), "embedding_weight_not_trainable"),
    ],
    "FlattenConsecutive": [
        _named(_flatten(order="strided"), "flatten_strided_groups"),
        _named(_flatten(order="interleaved"), "flatten_interleaved_channels"),
        _named(_flatten(squeeze="all"), "flatten_squeezes_batch_of_one"),
        _named(_flatten(squeeze="never"), "flatten_never_squeezes"),
        _named(_flatten(order="view"), "flatten_view_of_noncontiguous"),
        _named(FlattenConsecutiveOtherName, "flatten_factor_not_named_n"),
    ],
    "BatchNorm1d": [
        _named(_batchnorm(dims="first"), "bn_reduces_dim0_only"),
        _named(_batchnorm(update_in_eval=True), "bn_updates_running_stats_in_eval"),
        _named(_batchnorm(unbiased_norm=True), "bn_normalises_with_unbiased_var"),
        _named(_batchnorm(momentum_reversed=True), "bn_momentum_reversed"),
        _named(_batchnorm(stored_var="biased"), "bn_stores_biased_var"),
        _named(BatchNorm1dViewFlat, "bn_views_noncontiguous_input"),
    ],
    "Sequential": [
        _named(_sequential(train_reaches="children"), "sequential_eval_misses_nested"),
        _named(_sequential(params="shallow"), "sequential_params_skip_nested"),
        _named(_sequential(returns_self=False), "sequential_train_returns_none"),
    ],
    "build_hierarchy": [
        _named(_build(bias=True), "build_hierarchy_with_bias"),
        _named(_build(scale=1.0), "build_hierarchy_output_not_scaled"),
        _named(build_hierarchy_flat_weights, "build_hierarchy_nonleaf_output_weight"),
        _named(build_hierarchy_per_position_bn, "build_hierarchy_per_position_bn"),
        build_hierarchy_three_levels,
        build_hierarchy_bn_updates_in_eval,
        build_hierarchy_output_first,
    ],
    "CausalConv1d": [
        _named(_conv(left="symmetric"), "conv_symmetric_padding"),
        _named(_conv(left="right"), "conv_right_padding"),
        _named(CausalConv1dProjectThenShift, "conv_views_noncontiguous_input"),
        _named(_conv(spacing="one"), "conv_dilation_on_padding_only"),
        _named(_conv(shift=1), "conv_shifted_by_one"),
        _named(_conv(flip=True), "conv_reversed_taps"),
        _named(_conv(pad_false="pads"), "conv_pads_when_told_not_to"),
    ],
    "receptive_field": [receptive_field_no_plus_one, receptive_field_k_times_d, receptive_field_float,
                        receptive_field_ignores_kernel_sizes],
    "hierarchy_to_conv": [
        _named(_to_conv(dilation_rule="one"), "to_conv_no_dilation"),
        _named(_to_conv(dilation_rule="level"), "to_conv_dilation_is_level"),
        _named(_to_conv(dilation_rule="with_own"), "to_conv_dilation_includes_own_factor"),
        _named(_to_conv(dilation_rule="pow2"), "to_conv_dilation_power_of_two"),
        _named(_to_conv(trainable=False), "to_conv_copies_not_trainable"),
        _named(_to_conv(view="interleaved"), "to_conv_wrong_weight_view"),
        _named(_to_conv(share=True), "to_conv_shares_tensors"),
        _named(_to_conv(pad=True), "to_conv_padded_convolutions"),
        _named(hierarchy_to_conv_fresh_stats, "to_conv_fresh_running_stats"),
        _named(_to_conv(detach=False), "to_conv_clone_without_detach"),
        _named(_to_conv(bn_defaults=True), "to_conv_default_bn_eps_momentum"),
        _named(_to_conv(output_bias="zeros"), "to_conv_adds_a_bias"),
        _named(_to_conv(conv_bias=True), "to_conv_convolutions_with_bias"),
    ],
}


class _NoDilationConv(CausalConv1d):
    """CausalConv1d that ignores its dilation entirely (taps adjacent, padding k - 1)."""

    def __call__(self, x):
        k = self.kernel_size
        if self.pad:
            x = F.pad(x, (0, 0, k - 1, 0))
        T_out = x.shape[1] - (k - 1)
        out = sum(x[:, j: j + T_out] @ self.weight[j] for j in range(k))
        return out if self.bias is None else out + self.bias


WRONG["CausalConv1d"].append(_named(_NoDilationConv, "conv_dilation_ignored"))

# The checks of the composite exercises take the right layers from here.
CLASSES = (Sequential, Embedding, FlattenConsecutive, Linear, BatchNorm1d, Tanh)
