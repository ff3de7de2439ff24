"""Weight scaling vs Monte-Carlo dropout averaging: the math of `dropcli eval`.

Weight scaling is the deterministic test-time pass (inverted, gaussian: identity;
vanilla: x keep_prob; dropconnect: the mean weights W), the approximation of averaging the
exponentially many thinned networks. Monte-Carlo averaging runs T stochastic passes with
fresh dropout masks (DropConnect: fresh weight masks, one per batch of rows; batchnorm in
test mode) and averages their softmax probabilities (Srivastava et al. 2014, section
7.5, Fig. 11). Repeating the T passes with independent masks gives error bars. The
predictive entropy of the averaged probabilities (Gal & Ghahramani 2016) is compared
between correctly and wrongly classified examples.

A stored run is evaluated end to end by ``dropcli.experiment.evaluate``.
"""

from __future__ import annotations

import numpy as np

from dropcli.nn.layers import softmax
from dropcli.nn.model import predict_scores


def mc_curve(net, X, y, ts, repeats, seed=0, batch_size=1000):
    """Accuracy of T-pass MC averaging for each T in ``ts``, ``repeats`` times.

    X: (N, D), y: (N,). One sequence of max(ts) passes per repeat; the accuracy at T uses
    its first T passes. Returns (acc: (repeats, len(ts)), a list of ``repeats`` (N, C)
    probabilities, each averaged over max(ts) passes).
    """
    ts = sorted(ts)
    acc = np.zeros((repeats, len(ts)))
    final_probs = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        total = np.zeros((len(X), net.arch.num_classes))
        k = 0
        for t in range(1, ts[-1] + 1):
            scores = predict_scores(net.arch, net.params, net.bn_state, X, batch_size=batch_size, rng=rng)
            total += softmax(scores.astype(np.float64))
            if t == ts[k]:
                acc[r, k] = np.mean(total.argmax(axis=1) == y)
                k += 1
        final_probs.append(total / ts[-1])
    return acc, final_probs


def entropy_summary(probs, y):
    """Predictive entropy (nats) of averaged probabilities (N, C), for right vs wrong
    predictions of y (N,), and the AUROC of entropy as a detector of errors (0.5 = no
    better than chance)."""
    h = -np.sum(probs * np.log(np.clip(probs, 1e-12, None)), axis=1)
    wrong = probs.argmax(axis=1) != y
    out = {"mean_entropy_correct": float(h[~wrong].mean()) if (~wrong).any() else None,
           "mean_entropy_wrong": float(h[wrong].mean()) if wrong.any() else None,
           "errors": int(wrong.sum()), "examples": int(len(y)), "auroc_entropy_vs_error": None}
    if wrong.any() and (~wrong).any():  # Mann-Whitney: P(entropy of a wrong one > a right one)
        ranks = np.argsort(np.argsort(h, kind="stable"), kind="stable") + 1
        n_w, n_c = wrong.sum(), (~wrong).sum()
        out["auroc_entropy_vs_error"] = float((ranks[wrong].sum() - n_w * (n_w + 1) / 2) / (n_w * n_c))
    return out
