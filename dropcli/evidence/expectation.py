"""Expectation checks: does a dropout layer keep what its variant promises?

Each variant states its own predictions (``Variant.predicts`` in ``dropcli.nn.dropout``);
a quantity it does not predict is reported as not applicable, never as a failure. For
unit noise with multiplier u of mean mu and variance v (Bernoulli: u = s m, m ~
Bernoulli(k), mu = s k, v = s^2 k (1 - k); Gaussian: mu = 1, v = (1 - k) / k), given x:

    train-time mean      E[mean(u x)] = mu mean(x),     standard error sqrt(v mean(x^2) / n)
    train-time variance  E[mean((u x - mu x)^2)] = v mean(x^2),
                         standard error sqrt((E[(u - mu)^4] - v^2) mean(x^4) / n)
    fraction dropped     of the n' non-zero inputs, ~ Binomial(n', 1 - k) / n',
                         standard error sqrt(k (1 - k) / n')           (Bernoulli only)
    test-time output     exactly t x (deterministic)

with n = number of units sampled (entries of x times mask draws). DropConnect
(``check_dropconnect``) is checked on the output of its affine layer, whose mean and
variance over weight masks are known exactly for given x, W (see that function). A
measurement passes when it lies within ``Z_TOL`` standard errors of the prediction; for
a correct layer a false alarm has probability about 6e-5 per quantity.
"""

from __future__ import annotations

import numpy as np

from dropcli.nn.dropout import dropconnect_forward, dropout_forward, get_variant
from dropcli.nn.model import dropconnect_inputs, dropout_inputs, hidden_activations

Z_TOL = 4.0
QUANTITIES = ("train_mean", "train_var", "dropped_fraction", "test_mean")
NOT_PREDICTED = {
    "train_var": "a Bernoulli mask's variance follows from its mean and the fraction it drops",
    "dropped_fraction": {"gaussian": "Gaussian noise drops no unit",
                         "dropconnect": "DropConnect drops weights, not units (see the train-time variance)"},
}


def applies(quantity) -> bool:
    """Whether a check result's quantity was predicted (and so measured and judged)."""
    return isinstance(quantity, dict) and quantity.get("applicable", True)


def _not_applicable(variant: str, name: str, note: str | None = None) -> dict:
    if note is None:
        note = NOT_PREDICTED[name]
        note = note.get(variant, "not predicted by this variant") if isinstance(note, dict) else note
    return {"applicable": False, "note": note, "measured": None, "predicted": None, "se": None, "z": None,
            "pass": None}


def _judge(result: dict, variant) -> dict:
    """Mark the quantities ``variant`` does not predict as not applicable; set ``pass``."""
    for q in QUANTITIES:
        if q not in variant.predicts:
            result[q] = _not_applicable(variant.name, q)
    result["predicts"] = list(variant.predicts)
    result["pass"] = all(result[q]["pass"] for q in variant.predicts if applies(result[q]))
    return result


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
    """Measure one unit-dropout layer on inputs ``x`` over ``draws`` independent masks.

    ``dropout`` is the layer under test, with ``dropout_forward``'s signature (pass another
    implementation to check it against the variant's predictions).

    Returns a JSON-ready dict: keep_prob, drop_rate, variant, units sampled, the input's
    mean and zero fraction, ``predicts`` (the quantities the variant predicts), and for
    ``train_mean``, ``train_var``, ``dropped_fraction`` and ``test_mean`` the measured
    value, the prediction, its standard error, the z-score and pass/fail (or, for a
    quantity the variant does not predict, ``applicable: false`` and a note).
    """
    x = np.asarray(x)
    v = get_variant(variant)
    if v.masks != "units":
        raise ValueError(f"{variant} masks weights: check it with check_dropconnect")
    k, s, t = float(keep_prob), v.train_scale(keep_prob), v.test_scale(keep_prob)
    mu, var = v.noise_mean(k), v.noise_var(k)
    x64 = x.astype(np.float64, copy=False)
    in_mean = float(x64.mean())
    x2 = x64 * x64
    in_sq, in_4th = float(np.mean(x2)), float(np.mean(x2 * x2))
    nonzero = x != 0
    n_nonzero = int(nonzero.sum())

    total, squares, dropped = 0.0, 0.0, 0
    for _ in range(draws):
        out, _ = dropout(x, k, variant, train=True, rng=rng)
        total += float(out.sum(dtype=np.float64))
        dev = out.astype(np.float64) - mu * x64  # the noise around the predicted mean
        squares += float(np.dot(dev.ravel(), dev.ravel()))
        dropped += int(np.count_nonzero(nonzero & (out == 0)))
    n = x.size * draws
    train_mean = total / n
    drop_frac = dropped / (n_nonzero * draws) if n_nonzero else None

    test_out, _ = dropout(x, k, variant, train=False)
    test_mean = float(test_out.mean(dtype=np.float64))
    # Float rounding in the sums bounds how close a deterministic output can come.
    rounding_se = 2 * np.finfo(x.dtype).eps * max(s, t, 1.0) * max(np.sqrt(in_sq), 1e-30)

    result = {
        "variant": variant,
        "keep_prob": k,
        "drop_rate": 1 - k,
        "train_scale": s,
        "test_scale": t,
        "noise_mean": mu,
        "noise_var": var,
        "units": int(n),
        "input_mean": in_mean,
        "input_zero_fraction": 1 - n_nonzero / x.size if x.size else 0.0,
        "train_mean": _quantity(train_mean, mu * in_mean, max(np.sqrt(var * in_sq / n), rounding_se)),
        "train_var": _quantity(
            squares / n, var * in_sq,
            max(np.sqrt(max(v.noise_fourth(k) - var * var, 0.0) * in_4th / n), rounding_se**2),
        ),
        "dropped_fraction": _quantity(drop_frac, 1 - k, np.sqrt(k * (1 - k) / (n_nonzero * draws)))
        if n_nonzero else _not_applicable(variant, "dropped_fraction", "every input is zero: nothing could be dropped"),
        "test_mean": _quantity(test_mean, t * in_mean, rounding_se),
        "test_zero_fraction": float(np.mean(test_out == 0)),
    }
    return _judge(result, v)


def check_dropconnect(x, w, b, keep_prob, rng, *, draws=1, layer=dropconnect_forward):
    """Measure one DropConnect affine layer on inputs x: (N, D), w: (D, H), b: (H,) over
    ``draws`` weight masks. ``layer`` has ``dropconnect_forward``'s signature.

    With one mask M per call, out = x (M * W / k) + b, and u = M / k - 1 iid with mean 0,
    variance v = (1 - k) / k and fourth moment mu4, the prediction is exact given x, W:

        train-time mean      mean(x W + b); one draw's variance v sum_ij (c_i W_ij)^2 / (N H)^2
                             with c = column sums of x (all N rows share the mask)
        train-time variance  Q = mean((out - x W - b)^2), E[Q] = v sum((x*x) @ (W*W)) / (N H);
                             one draw's Var[Q] = sum_j 2 v^2 tr(A_j^2) + (mu4 - 3 v^2) sum_i A_j,ii^2
                             with A_j = diag(W_j) x^T x diag(W_j), the quadratic form of column j
        test-time output     exactly x W + b (the mean weights)

    Returns a dict like ``check_dropout``'s (dropped_fraction not applicable).
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    v = get_variant("dropconnect")
    k = float(keep_prob)
    var, fourth = v.noise_var(k), v.noise_fourth(k)
    x64, w64, b64 = (a.astype(np.float64, copy=False) for a in (x, w, b))
    (N, D), H = x.shape, w.shape[1]
    mean_out = x64 @ w64 + b64
    w2 = w64 * w64
    gram = x64.T @ x64
    one_draw_mean_var = var * float(np.sum((x64.sum(axis=0)[:, None] * w64) ** 2)) / (N * H) ** 2
    one_draw_q_var = (2 * var * var * float(np.sum(((gram * gram) @ w2) * w2))
                      + (fourth - 3 * var * var) * float(np.sum(w2 * w2 * (np.diag(gram) ** 2)[:, None]))) / (N * H) ** 2

    total, squares = 0.0, 0.0
    for _ in range(draws):
        out, _ = layer(x, w, b, k, train=True, rng=rng)
        total += float(out.sum(dtype=np.float64))
        dev = out.astype(np.float64) - mean_out
        squares += float(np.dot(dev.ravel(), dev.ravel()))
    test_out, _ = layer(x, w, b, k, train=False)
    # A matrix product's rounding: at most ~D eps of the sum of absolute terms per entry.
    bound = np.finfo(np.result_type(x, w)).eps * D * float(np.max(np.abs(x64) @ np.abs(w64) + np.abs(b64), initial=0))
    predicted = float(mean_out.mean())
    result = {
        "variant": "dropconnect",
        "keep_prob": k,
        "drop_rate": 1 - k,
        "train_scale": v.train_scale(k),
        "test_scale": v.test_scale(k),
        "noise_mean": v.noise_mean(k),
        "noise_var": var,
        "weights": int(w.size),
        "units": int(N * H * draws),
        "input_mean": float(x64.mean()),
        "input_zero_fraction": float(np.mean(x == 0)),
        "train_mean": _quantity(total / (N * H * draws), predicted, max(np.sqrt(one_draw_mean_var / draws), bound)),
        "train_var": _quantity(squares / (N * H * draws), var * float(np.sum((x64 * x64) @ w2)) / (N * H),
                               max(np.sqrt(max(one_draw_q_var, 0.0) / draws), bound**2)),
        "test_mean": _quantity(float(test_out.mean(dtype=np.float64)), predicted, bound),
        "test_zero_fraction": float(np.mean(test_out == 0)),
    }
    return _judge(result, v)


def variance_shift(net, X) -> list[dict]:
    """Per batchnorm layer: the running variance it uses at test time vs the variance its
    input actually has at test time on ``X`` (Li et al. 2019, "variance shift").

    Dropout before a batchnorm layer makes its train-time input noisier than its test-time
    input, so the running variance overestimates the test variance. ``shift`` is the mean
    over units of max(ratio, 1/ratio) with ratio = running / actual (1 = no shift). With
    DropConnect, the noise before batchnorm i is the mask on the weights into it.
    """
    arch = net.arch
    if arch.normalization != "batchnorm":
        return []
    rows = []
    for h in hidden_activations(arch, net.params, net.bn_state, X):
        i = h["layer"]
        noisy_input = arch.unit_keep_prob(i - 1) < 1 if i > 1 else arch.input_keep_prob < 1
        actual = h["pre_norm"].astype(np.float64).var(axis=0)
        running = net.bn_state[f"running_var{i}"].astype(np.float64)
        ratio = running / np.maximum(actual, 1e-12)
        both = np.maximum(ratio, 1 / ratio)
        rows.append({
            "layer": f"batchnorm{i}",
            "dropout_before": bool(noisy_input or arch.weight_keep_prob(i) < 1),
            "running_var_mean": float(running.mean()),
            "actual_var_mean": float(actual.mean()),
            "shift": float(both.mean()),
            "shift_max": float(both.max()),
        })
    return rows


def expectation_report(net, X, rng, *, draws=20, max_examples=2000):
    """Check every dropout layer of a trained ``net`` on inputs ``X`` (e.g. validation).

    The activations entering each layer are taken in test mode (what the trained net
    computes); ``draws`` masks per layer are drawn from ``rng``. DropConnect layers
    ("affine{i}") are checked on their inputs and weights.
    """
    X = X[:max_examples]
    arch = net.arch
    # A net trained with a huge learning rate can keep huge (finite) weights: what overflows
    # is recorded (inf, nan: the check fails), not repeated as NumPy warnings on stderr.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        layers = [
            {"layer": name, **check_dropout(acts, keep, arch.unit_variant, rng, draws=draws)}
            for name, keep, acts in dropout_inputs(arch, net.params, net.bn_state, X)
        ] + [
            {"layer": name, **check_dropconnect(acts, w, b, keep, rng, draws=draws)}
            for name, keep, acts, w, b in dropconnect_inputs(arch, net.params, net.bn_state, X)
        ]
        shift = variance_shift(net, X)
    return {
        "examples": int(len(X)),
        "draws": draws,
        "z_tol": Z_TOL,
        "pass": all(layer["pass"] for layer in layers),
        "layers": layers,
        "variance_shift": shift,
    }
