"""Expectation checks: does a dropout layer keep what its variant promises?

For inputs ``x`` and a variant with train scale ``s`` and test scale ``t`` (see
``dropcli.nn.dropout``), Bernoulli(keep_prob = k) masks give, conditionally on x:

    train-time mean      E[mean(s m x)]  = s k mean(x),
                         standard error   s sqrt(k (1 - k) mean(x^2) / n)
    fraction dropped     of the n' non-zero inputs, ~ Binomial(n', 1 - k) / n',
                         standard error   sqrt(k (1 - k) / n')
    test-time output     exactly t x (deterministic)

with n = number of units sampled (entries of x times mask draws). A measurement passes
when it lies within ``Z_TOL`` standard errors of the prediction; for a correct layer a
false alarm has probability about 6e-5 per quantity.
"""

from __future__ import annotations

import numpy as np

from .nn.dropout import dropout_forward, get_variant

Z_TOL = 4.0


def _quantity(measured, predicted, se):
    if se:
        z = (measured - predicted) / se
    else:  # nothing random and nothing to round: must be exact
        z = 0.0 if measured == predicted else float("inf")
    return {
        "measured": float(measured),
        "predicted": float(predicted),
        "se": float(se),
        "z": float(z),
        "pass": bool(abs(z) <= Z_TOL),
    }


def check_dropout(x, keep_prob, variant, rng, *, draws=1, dropout=dropout_forward):
    """Measure one dropout layer on inputs ``x`` over ``draws`` independent masks.

    ``dropout`` is the layer under test, with ``dropout_forward``'s signature (pass another
    implementation to check it against the variant's predictions).

    Returns a JSON-ready dict: keep_prob, drop_rate, variant, units sampled, the input's
    mean and zero fraction, and for ``train_mean``, ``dropped_fraction`` and ``test_mean``
    the measured value, the prediction, its standard error, the z-score and pass/fail.
    """
    x = np.asarray(x)
    v = get_variant(variant)
    k, s, t = float(keep_prob), v.train_scale(keep_prob), v.test_scale(keep_prob)
    x64 = x.astype(np.float64, copy=False)
    in_mean = float(x64.mean())
    in_sq = float(np.mean(x64 * x64))
    nonzero = x != 0
    n_nonzero = int(nonzero.sum())

    total, dropped = 0.0, 0
    for _ in range(draws):
        out, _ = dropout(x, k, variant, train=True, rng=rng)
        total += float(out.sum(dtype=np.float64))
        dropped += int(np.count_nonzero(nonzero & (out == 0)))
    n = x.size * draws
    train_mean = total / n
    drop_frac = dropped / (n_nonzero * draws) if n_nonzero else 0.0

    test_out, _ = dropout(x, k, variant, train=False)
    test_mean = float(test_out.mean(dtype=np.float64))
    # Float rounding in the sums bounds how close a deterministic output can come.
    rounding_se = 2 * np.finfo(x.dtype).eps * max(s, t) * max(np.sqrt(in_sq), 1e-30)

    result = {
        "variant": variant,
        "keep_prob": k,
        "drop_rate": 1 - k,
        "train_scale": s,
        "test_scale": t,
        "units": int(n),
        "input_mean": in_mean,
        "input_zero_fraction": 1 - n_nonzero / x.size if x.size else 0.0,
        "train_mean": _quantity(
            train_mean, s * k * in_mean, max(s * np.sqrt(k * (1 - k) * in_sq / n), rounding_se)
        ),
        "dropped_fraction": _quantity(
            drop_frac, 1 - k, np.sqrt(k * (1 - k) / (n_nonzero * draws)) if n_nonzero else 0.0
        ),
        "test_mean": _quantity(test_mean, t * in_mean, rounding_se),
        "test_zero_fraction": float(np.mean(test_out == 0)),
    }
    result["pass"] = all(result[q]["pass"] for q in ("train_mean", "dropped_fraction", "test_mean"))
    return result


def variance_shift(net, X) -> list[dict]:
    """Per batchnorm layer: the running variance it uses at test time vs the variance its
    input actually has at test time on ``X`` (Li et al. 2019, "variance shift").

    Dropout before a batchnorm layer makes its train-time input noisier than its test-time
    input, so the running variance overestimates the test variance. ``shift`` is the mean
    over units of max(ratio, 1/ratio) with ratio = running / actual (1 = no shift).
    """
    from .nn.model import hidden_activations

    if net.arch.normalization != "batchnorm":
        return []
    rows = []
    for h in hidden_activations(net.arch, net.params, net.bn_state, X):
        i = h["layer"]
        actual = h["pre_norm"].astype(np.float64).var(axis=0)
        running = net.bn_state[f"running_var{i}"].astype(np.float64)
        ratio = running / np.maximum(actual, 1e-12)
        both = np.maximum(ratio, 1 / ratio)
        rows.append({
            "layer": f"batchnorm{i}",
            "dropout_before": bool(net.arch.hidden_keep_prob(i - 1) < 1 if i > 1 else net.arch.input_keep_prob < 1),
            "running_var_mean": float(running.mean()),
            "actual_var_mean": float(actual.mean()),
            "shift": float(both.mean()),
            "shift_max": float(both.max()),
        })
    return rows


def expectation_report(net, X, rng, *, draws=20, max_examples=2000):
    """Check every dropout layer of a trained ``net`` on inputs ``X`` (e.g. validation).

    The activations entering each layer are taken in test mode (what the trained net
    computes); ``draws`` masks per layer are drawn from ``rng``.
    """
    from .nn.model import dropout_inputs

    X = X[:max_examples]
    found = dropout_inputs(net.arch, net.params, net.bn_state, X)
    layers = [
        {"layer": name, **check_dropout(acts, keep, net.arch.variant, rng, draws=draws)}
        for name, keep, acts in found
    ]
    return {
        "examples": int(len(X)),
        "draws": draws,
        "z_tol": Z_TOL,
        "pass": all(layer["pass"] for layer in layers),
        "layers": layers,
        "variance_shift": variance_shift(net, X),
    }
