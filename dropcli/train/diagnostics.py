"""Training diagnostics per epoch: does the gradient reach every layer, what do the hidden
layers output, and how many relu units died?

Each epoch record in ``metrics.jsonl`` carries a ``"diagnostics"`` dict:

    grad_norm      {"W1": .., "WL": ..}  mean over the epoch's steps of ||dL/dW_i|| (Frobenius
                                         norm of the gradient the optimizer received, L2 term
                                         included); left out of the epoch-0 record (no steps yet)
    act_mean       {"h1": .., ...}       mean of each hidden layer's output (after the
                                         activation, before dropout) over examples and units
    act_std        {"h1": .., ...}       its standard deviation over examples and units
    dead_fraction  {"h1": .., ...}       relu nets only: fraction of a layer's units that output
                                         0 for every example
    max_col_norm   {"W1": .., ...}       largest norm of a unit's incoming weights (a column of
                                         W_i): what ``model.max_norm`` bounds

A diverging net's values are recorded as they are: a sum of squares that overflowed its
dtype makes ``act_std`` (or ``grad_norm``, ``max_col_norm``) ``inf``, a NaN activation NaN;
computing them raises nothing and prints no NumPy warning.

Activations are measured in test mode on the fixed train-accuracy subsample, in the pass
that measures train accuracy (``scores_and_activations``), so they cost a few sums per
layer; gradient norms cost one dot product per weight matrix per step.
"""

from __future__ import annotations

import math

import numpy as np

from dropcli.nn.model import forward, layer_values


def _overflow_recorded():
    """What overflows (a diverging net) is recorded as inf or nan, not repeated as NumPy warnings."""
    return np.errstate(over="ignore", invalid="ignore")


class GradNorms:
    """The mean over steps of each weight gradient's norm; ``add`` once per step."""

    def __init__(self, num_layers: int):
        self.names = [f"W{i}" for i in range(1, num_layers + 1)]
        self.reset()

    def reset(self) -> None:
        self.sums = dict.fromkeys(self.names, 0.0)
        self.steps = 0

    def add(self, grads) -> None:
        with _overflow_recorded():
            for name in self.names:
                g = grads[name].ravel()
                self.sums[name] += math.sqrt(float(np.dot(g, g)))
        self.steps += 1

    def means(self) -> dict[str, float] | None:
        return {k: s / self.steps for k, s in self.sums.items()} if self.steps else None


class ActivationStats:
    """Per hidden layer: sums for the mean and std of its outputs, and which units were ever
    non-zero; ``add`` each batch's ``model.layer_values``."""

    def __init__(self):
        self.count, self.sum, self.sumsq, self.active = {}, {}, {}, {}

    def add(self, found, relu: bool = False) -> None:
        # Sums in the activations' own precision (pairwise sum, BLAS dot): ~1e-6 relative in
        # float32, plenty for a diagnostic, and no temporary copies.
        for h in found:
            key, out = f"h{h['layer']}", h["out"]
            flat = out.ravel()
            self.count[key] = self.count.get(key, 0) + flat.size
            with _overflow_recorded():
                self.sum[key] = self.sum.get(key, 0.0) + float(flat.sum())
                self.sumsq[key] = self.sumsq.get(key, 0.0) + float(np.dot(flat, flat))
            if relu:  # relu outputs are >= 0: a unit was active iff its maximum is > 0
                active = out.max(axis=0, initial=0) > 0
                self.active[key] = active | self.active[key] if key in self.active else active

    def summary(self, relu: bool) -> dict:
        mean = {k: self.sum[k] / n for k, n in self.count.items() if n}
        std = {k: _std(self.sumsq[k] / self.count[k], m) for k, m in mean.items()}
        out = {"act_mean": mean, "act_std": std}
        if relu:
            out["dead_fraction"] = {k: float(1 - a.mean()) for k, a in self.active.items()}
        return out


def _std(mean_square: float, mean: float) -> float:
    """sqrt(E[x^2] - E[x]^2), or E[x^2] itself (inf, nan) once the squares overflowed or
    were not numbers: a diverging net's statistics are reported, never raised on."""
    if not math.isfinite(mean_square):
        return mean_square
    # mean * mean, not mean ** 2: Python's ** raises OverflowError where * gives inf
    return math.sqrt(max(mean_square - mean * mean, 0.0))


def scores_and_activations(arch, params, state, X, batch_size: int = 1000):
    """Test-mode scores for X (the same as ``predict_scores``', bit for bit) and the
    ``ActivationStats`` of its hidden layers, in batches of ``batch_size`` rows."""
    stats, parts = ActivationStats(), []
    for lo in range(0, len(X), batch_size):
        scores, caches, _ = forward(arch, params, state, X[lo : lo + batch_size], train=False)
        parts.append(scores)
        stats.add(layer_values(caches), relu=arch.activation == "relu")
    scores = np.concatenate(parts) if parts else np.zeros((0, arch.num_classes), X.dtype)
    return scores, stats


def max_column_norms(arch, params) -> dict[str, float]:
    """The largest incoming-weight norm of a unit in each layer."""
    out = {}
    for i in range(1, arch.num_layers + 1):
        w = params[f"W{i}"]
        with _overflow_recorded():
            out[f"W{i}"] = float(np.sqrt(np.einsum("ij,ij->j", w, w).max()))
    return out


def epoch_diagnostics(arch, params, activations: ActivationStats, grad_norms: GradNorms) -> dict:
    """The ``"diagnostics"`` dict of one epoch record (see the module docstring)."""
    out = {}
    if (means := grad_norms.means()) is not None:
        out["grad_norm"] = means
    out.update(activations.summary(relu=arch.activation == "relu"))
    out["max_col_norm"] = max_column_norms(arch, params)
    return out
