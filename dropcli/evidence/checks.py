"""`dropcli check`: the cs231n notebook's dropout checks and numeric gradient checks, as data.

Expectation check (per variant and keep_prob): input x = N(0, 1) + 10, 500 x 500, as in
the notebook; the quantities each variant predicts (train-time mean, and the fraction
dropped for Bernoulli masks or the train-time variance for Gaussian noise and DropConnect;
the test-time mean) against its predictions (see ``dropcli.evidence.expectation``). DropConnect is
checked as an affine layer 500 -> 500 with weights W = (1 + N(0, 1/4)) / 500, so that its
output, like the others', has mean about 10.

Gradient checks (float64): every layer against fourth-order numeric differences
(relative error <= LAYER_TOL), and whole networks for each normalization x variant x
keep_prob. A check passes when every entry is within atol + tol (|a| + |n|) (``rel_error``
with ``atol``; for layers atol = 0, cs231n's test). Whole nets use NET_ATOL: finite
differences resolve no better than ~1e-10 absolute, so a gradient that is exactly zero,
such as a bias followed by batchnorm, has no meaningful relative error.

What is reported is not the forgiven error but the plain one: the relative error
|a - n| / (|a| + |n|) maximised over the entries with |a| + |n| > atol / tol (below that
floor the numeric gradient cannot resolve a relative error of tol; 0 for layers, so all
entries), the largest absolute difference, and which criterion the check meets
(``passed_by``: relative error <= tol, absolute difference <= atol, or both).
"""

from __future__ import annotations

import numpy as np

from dropcli.evidence.expectation import QUANTITIES, Z_TOL, applies, check_dropconnect, check_dropout
from dropcli.nn import layers
from dropcli.nn.dropout import VARIANTS as DROPOUT_VARIANTS
from dropcli.nn.dropout import dropconnect_backward, dropconnect_forward, dropout_backward, dropout_forward, get_variant
from dropcli.nn.gradcheck import numeric_gradient, numeric_gradient_array, rel_error, worst_index
from dropcli.nn.model import FullyConnectedNet, forward, l2_penalty, layer_values

LAYER_TOL = 1e-8
NET_TOL = 1e-6
NET_ATOL = 5e-10
VARIANTS = tuple(DROPOUT_VARIANTS)  # every variant the network has
LABELS = {"train_mean": "train-time mean", "train_var": "train-time variance", "dropped_fraction": "fraction dropped",
          "test_mean": "test-time mean"}


# --- expectation ----------------------------------------------------------------------------


def expectation_input(seed: int = 0) -> np.ndarray:
    """The notebook's input: standard normal + 10, 500 x 500, float64."""
    return np.random.default_rng(seed).standard_normal((500, 500)) + 10


def expectation_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DropConnect's weights for the check: (1 + N(0, 1/4)) / 500, 500 x 500, and zero biases."""
    w = (1 + 0.5 * np.random.default_rng([seed, 2]).standard_normal((500, 500))) / 500
    return w, np.zeros(500)


def expectation_checks(keeps, variants, seed: int = 0, dropout=None, dropconnect=None) -> list[dict]:
    """One check result per (variant, keep_prob), with failure messages. ``dropout`` and
    ``dropconnect`` are the layers under test (default: dropcli's ``dropout_forward`` and
    ``dropconnect_forward``)."""
    dropout = dropout or dropout_forward
    dropconnect = dropconnect or dropconnect_forward
    x = expectation_input(seed)
    rows = []
    for variant in variants:
        for keep in keeps:
            rng = np.random.default_rng([seed, 1])
            if get_variant(variant).masks == "weights":
                result = check_dropconnect(x, *expectation_weights(seed), keep, rng, layer=dropconnect)
            else:
                result = check_dropout(x, keep, variant, rng, dropout=dropout)
            result["failures"] = describe_failures(result)
            rows.append(result)
    return rows


def describe_failures(result: dict) -> list[str]:
    """One sentence per failed quantity: which, measured vs predicted, by how much."""
    out = []
    for q in QUANTITIES:
        r = result[q]
        if applies(r) and not r["pass"]:
            out.append(
                f"{result['variant']} keep_prob {result['keep_prob']:g}: {LABELS[q]} {r['measured']:.6g} "
                f"vs predicted {r['predicted']:.6g} (off by {r['measured'] - r['predicted']:+.3g}, "
                f"{r['z']:+.1f} standard errors; allowed {Z_TOL:g})"
            )
    return out


# --- gradients ------------------------------------------------------------------------------


def _layer_cases(rng):
    """(name, forward() -> array, {input name: array}, backward(dout) -> {input name: grad})."""
    x, w, b = rng.standard_normal((10, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    yield "affine", lambda: layers.affine_forward(x, w, b)[0], {"x": x, "w": w, "b": b}, \
        lambda d: dict(zip("xwb", layers.affine_backward(d, layers.affine_forward(x, w, b)[1])))
    for name, (fwd, bwd) in layers.ACTIVATIONS.items():
        a = rng.standard_normal((8, 7))
        a[np.abs(a) < 0.01] = 0.5  # keep the stencil (+-2h) away from relu's kink
        yield name, (lambda f=fwd, a=a: f(a)[0]), {"x": a}, (lambda d, f=fwd, g=bwd, a=a: {"x": g(d, f(a)[1])})
    h = 5
    xb = 4 * rng.standard_normal((12, h)) + 3
    gamma, beta = rng.standard_normal(h), rng.standard_normal(h)
    rm, rv = rng.standard_normal(h), rng.uniform(0.5, 2, h)
    for train in (True, False):
        fwd = lambda t=train: layers.batchnorm_forward(xb, gamma, beta, rm, rv, train=t)[0]  # noqa: E731
        bwd = lambda d, t=train: dict(zip(("x", "gamma", "beta"), layers.batchnorm_backward(  # noqa: E731
            d, layers.batchnorm_forward(xb, gamma, beta, rm, rv, train=t)[1])))
        yield f"batchnorm ({'train' if train else 'test'})", fwd, {"x": xb, "gamma": gamma, "beta": beta}, bwd
    xl = 3 * rng.standard_normal((6, 9)) - 2
    gl, bl = rng.standard_normal(9), rng.standard_normal(9)
    yield "layernorm", lambda: layers.layernorm_forward(xl, gl, bl)[0], {"x": xl, "gamma": gl, "beta": bl}, \
        lambda d: dict(zip(("x", "gamma", "beta"), layers.layernorm_backward(d, layers.layernorm_forward(xl, gl, bl)[1])))


def _dropout_cases(rng, keeps, variants):
    xd = rng.standard_normal((10, 10)) + 10
    for variant in variants:
        if get_variant(variant).masks == "weights":
            yield from _dropconnect_cases(keeps)
            continue
        for keep in keeps:
            def fwd(v=variant, k=keep):  # the same generator state every call: the same mask
                return dropout_forward(xd, k, v, train=True, rng=np.random.default_rng(7))[0]

            def bwd(d, v=variant, k=keep):
                return {"x": dropout_backward(d, dropout_forward(xd, k, v, train=True, rng=np.random.default_rng(7))[1])}

            yield f"dropout {variant} keep {keep:g}", fwd, {"x": xd}, bwd


def _dropconnect_cases(keeps):
    gen = np.random.default_rng(8)  # its own inputs: the other cases' draws stay as they were
    x, w, b = gen.standard_normal((10, 6)), gen.standard_normal((6, 5)), gen.standard_normal(5)
    for keep in keeps:
        def run(k=keep):  # the same generator state every call: the same weight mask
            return dropconnect_forward(x, w, b, k, train=True, rng=np.random.default_rng(7))

        yield (f"dropconnect keep {keep:g}", lambda r=run: r()[0], {"x": x, "w": w, "b": b},
               lambda d, r=run: dict(zip("xwb", dropconnect_backward(d, r()[1]))))


def layer_gradient_checks(keeps, variants, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    cases = list(_layer_cases(rng)) + list(_dropout_cases(rng, keeps, variants))
    for name, fwd, inputs, bwd in cases:
        dout = rng.standard_normal(np.shape(fwd()))
        analytic = bwd(dout)
        for key, x in inputs.items():
            numeric = numeric_gradient_array(fwd, x, dout, h=1e-3, order=4)
            rows.append(_grad_row("layer", f"{name} d{key}", analytic[key], numeric, LAYER_TOL, 0.0))
    return rows


def kink_free_batch(net: FullyConnectedNet, n: int, mask_seed: int, margin: float = 2e-4):
    """A batch whose relu inputs all stay at least ``margin`` from 0 under the masks of
    ``default_rng(mask_seed)``, so that moving a parameter by the stencil's +-2h (~2e-5)
    cannot cross relu's kink, where the loss has no derivative. Tries seeds 0, 1, ...
    (other activations have no kink: the first batch serves)."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        X, y = rng.standard_normal((n, net.arch.input_dim)), rng.integers(net.arch.num_classes, size=n)
        if net.arch.activation != "relu":
            return X, y
        x = X.astype(net.dtype, copy=False)  # evaluated as net.loss would: in the net's precision
        _, caches, _ = forward(net.arch, net.params, net.bn_state, x, train=True, rng=np.random.default_rng(mask_seed))
        if min(float(np.abs(h["act_in"]).min()) for h in layer_values(caches)) > margin:
            return X, y
    raise RuntimeError("no kink-free batch found in 100 tries")


def net_gradient_check(net: FullyConnectedNet, X, y, mask_seed: int = 1) -> dict:
    """Compare every parameter's analytic gradient with the numeric one; the worst row."""
    def loss():  # forward only; a generator in the same state each call: the same masks
        scores = forward(net.arch, net.params, net.bn_state, X, train=True, rng=np.random.default_rng(mask_seed))[0]
        return layers.softmax_loss(scores, y)[0] + l2_penalty(net.arch, net.params)

    _, grads = net.loss(X, y, rng=np.random.default_rng(mask_seed))
    rows = [
        _grad_row("net", name, grads[name], numeric_gradient(loss, w, h=1e-5, order=4), NET_TOL, NET_ATOL)
        for name, w in net.params.items()
    ]
    # One row per net: the worst parameter (a failing one first), with the net-wide figures.
    worst = max(rows, key=lambda r: (not r["pass"], -1 if r["rel_error"] is None else r["rel_error"]))
    row = {
        **worst,
        "rel_error": max((r["rel_error"] for r in rows if r["rel_error"] is not None), default=None),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "normwise": max((r["normwise"] for r in rows if r["normwise"] is not None), default=None),
        "pass": all(r["pass"] for r in rows),
    }
    row["passed_by"] = passed_by(row)
    return row


def _kink_free_masks_and_batch(net: FullyConnectedNet, n: int):
    """``kink_free_batch`` under the masks of mask seed 1, else 2, 3, ...; failing that, with
    biases and betas moved off 0 (N(0, 0.1^2)). DropConnect at a low keep_prob often keeps
    only inputs that relu zeroed, or none, which pins a relu input at exactly its bias, 0,
    whatever the batch. Returns (X, y, mask_seed)."""
    for attempt in range(2):
        for mask_seed in range(1, 6):
            try:
                return (*kink_free_batch(net, n, mask_seed=mask_seed), mask_seed)
            except RuntimeError:
                continue
        gen = np.random.default_rng(3)
        for name, value in net.params.items():
            if name.startswith(("b", "beta")):
                value[...] = 0.1 * gen.standard_normal(value.shape)
    raise RuntimeError("no kink-free masks and batch found")


def net_gradient_checks(keeps, variants, normalizations=(None, "batchnorm", "layernorm"), seed: int = 0):
    rows = []
    combos = [(1.0, "inverted")] + [(k, v) for v in variants for k in keeps if k < 1]
    for norm in normalizations:
        for keep, variant in combos:
            net = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, keep_prob=keep, variant=variant,
                                    normalization=norm, weight_scale=5e-2, dtype=np.float64, seed=seed)
            X, y, mask_seed = _kink_free_masks_and_batch(net, 6)
            worst = net_gradient_check(net, X, y, mask_seed)
            worst["name"] = f"net {norm or 'none'} {variant} keep {keep:g} (worst: {worst['name']})"
            rows.append(worst)
    return rows


def _grad_row(kind, name, analytic, numeric, tol, atol):
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    ok = rel_error(analytic, numeric, atol) <= tol  # the pass test: each entry within atol + tol (|a| + |n|)
    diff, size = np.abs(analytic - numeric), np.abs(analytic) + np.abs(numeric)
    floor = atol / tol  # below it, tol x magnitude is under the numeric accuracy atol: noise, not error
    rel = np.where(size > floor, diff / np.maximum(size, 1e-8), -1.0)  # 1e-8: cs231n's, matters only for layers
    if ok and rel.max() >= 0:  # name the entry with the largest reported relative error
        i = np.unravel_index(int(np.argmax(rel)), rel.shape)
    else:  # or the one that fails worst
        i = worst_index(analytic, numeric, atol)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    row = {
        "kind": kind, "name": name, "threshold": tol, "atol": atol, "rel_floor": floor, "pass": bool(ok),
        "rel_error": float(rel.max()) if rel.max() >= 0 else None,  # None: no entry above the floor
        "max_abs_diff": float(diff.max()),
        "worst_index": [int(j) for j in i], "analytic": float(analytic[i]), "numeric": float(numeric[i]),
        # ||a - n|| / (||a|| + ||n||); None where the true gradient is zero (nothing to compare)
        "normwise": float(np.linalg.norm(analytic - numeric) / scale) if np.abs(analytic).max() > 1e-12 else None,
    }
    row["passed_by"] = passed_by(row)
    return row


def passed_by(row: dict) -> str | None:
    """Which criterion a passing gradient check meets: 'rel. error' (<= threshold over the entries
    above the floor), 'abs. difference' (<= atol everywhere), both, or 'per entry' (neither alone:
    each entry within atol + threshold (|a| + |n|)). None for a failing check."""
    if not row["pass"]:
        return None
    met = []
    if row["rel_error"] is not None and row["rel_error"] <= row["threshold"]:
        met.append("rel. error")
    if row["max_abs_diff"] <= row["atol"]:
        met.append("abs. difference")
    return " and ".join(met) or "per entry"


def run_checks(keeps=(0.25, 0.4, 0.7), variants=VARIANTS, seed: int = 0) -> dict:
    """Everything `dropcli check` measures, JSON-ready."""
    expectation = expectation_checks(keeps, variants, seed)
    gradients = layer_gradient_checks(keeps, variants, seed) + net_gradient_checks(keeps, variants, seed=seed)
    return {
        "keeps": list(keeps), "variants": list(variants), "seed": seed, "z_tol": Z_TOL,
        "expectation": expectation, "gradients": gradients,
        "pass": all(r["pass"] for r in expectation) and all(r["pass"] for r in gradients),
    }
