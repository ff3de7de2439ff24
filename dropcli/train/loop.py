"""The training loop: minibatch optimisation with per-epoch evaluation.

It prints nothing. Everything it measures goes to ``callback(record)``, one dict per
epoch (``kind: "epoch"``, with training diagnostics under ``"diagnostics"``: see
``dropcli.train.diagnostics``) and, if ``log_every`` is set, per logged iteration
(``kind: "iteration"``). With ``patience``, a run whose validation accuracy has not
improved for that many epochs stops, with a ``kind: "early_stop"`` record. The caller
decides what a person sees and what is stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from dropcli.nn.layers import log_softmax
from dropcli.nn.model import FullyConnectedNet, predict_scores
from dropcli.nn.optim import make_optimizer
from dropcli.nn.step import TrainStep
from dropcli.train.diagnostics import GradNorms, epoch_diagnostics, scores_and_activations


@dataclass(frozen=True)
class TrainSettings:
    optimizer: str = "adam"  # sgd | momentum | rmsprop | adam
    learning_rate: float = 1e-3
    lr_decay: float = 1.0  # multiplied in after every epoch
    batch_size: int = 100
    epochs: int = 10
    eval_train_samples: int = 1000  # train accuracy is measured on this fixed subsample
    eval_batch_size: int = 1000  # evaluation memory stays bounded on big splits
    log_every: int = 0  # also report every N iterations (0: only epochs)
    max_norm: float | None = None  # after each step, hidden units' incoming weights to norm <= this
    diagnostics: bool = True  # gradient norms and activation statistics in each epoch record
    patience: int | None = None  # stop after this many epochs without a better val accuracy


@dataclass
class History:
    """What a training run produced; ``records`` are the callback's epoch records."""

    records: list = field(default_factory=list)
    status: str = "completed"  # completed | diverged
    stopped_epoch: int | None = None  # the epoch patience stopped training after
    best_epoch: int = 0
    best_val_acc: float = -1.0
    best_params: dict | None = None
    best_state: dict | None = None
    iterations: int = 0


def learning_rate_at(epoch: int, base: float, decay: float) -> float:
    """The learning rate used during epoch ``epoch`` (1-based): decayed after each epoch."""
    return base * decay ** (epoch - 1)


def minibatches(n: int, batch_size: int, min_rows: int = 1) -> list[tuple[int, int]]:
    """The [lo, hi) row ranges of an epoch over n rows. A last batch of fewer than
    ``min_rows`` rows joins the one before it: batchnorm asks for 2, because one row has
    no variance (its gradient would be exactly zero and its running variance would shrink)."""
    bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def evaluate(net: FullyConnectedNet, X, y, batch_size: int = 1000):
    """Test-mode accuracy and mean cross-entropy of ``net`` on (X, y). A net with huge
    weights (a huge learning rate) gets its inf or nan loss without NumPy warnings."""
    if len(X) == 0:
        return float("nan"), float("nan")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return accuracy_and_loss(predict_scores(net.arch, net.params, net.bn_state, X, batch_size=batch_size), y)


def accuracy_and_loss(scores, y):
    """Accuracy and mean cross-entropy of scores (N, C) for labels y (N,)."""
    loss = -float(np.mean(log_softmax(scores)[np.arange(len(y)), y], dtype=np.float64))
    acc = float(np.mean(scores.argmax(axis=1) == y))
    return acc, loss


def fit(net: FullyConnectedNet, data, settings: TrainSettings, *, order_rng, dropout_rng, eval_rng, callback=None):
    """Train ``net`` in place on ``data`` (with X_train, y_train, X_val, y_val arrays).

    Each epoch visits the training set in a fresh permutation drawn from ``order_rng``
    (no sampling with replacement); dropout masks come from ``dropout_rng``; the fixed
    subsample for train accuracy from ``eval_rng``. With ``settings.max_norm``, each step
    is followed by the max-norm constraint. A non-finite loss, a step's or the epoch-end
    evaluation's, ends training as diverged (a "diverged" record, no epoch record for that
    epoch). With ``settings.patience`` = P, training stops after the first epoch that is P
    epochs past the best one (an "early_stop" record). At the end ``net`` holds the
    parameters of the epoch with the best validation accuracy.
    """
    emit = callback or (lambda record: None)
    X, y = data.X_train, data.y_train
    n = len(X)
    sub = eval_rng.permutation(n)[: settings.eval_train_samples]
    X_sub, y_sub = X[sub], y[sub]
    optimizer = make_optimizer(settings.optimizer, learning_rate=settings.learning_rate)
    batches = minibatches(n, settings.batch_size, min_rows=2 if net.arch.normalization == "batchnorm" else 1)
    # The training step (forward, backward, update, in buffers) owns the parameters while training.
    step = TrainStep(net.arch, net.params, optimizer, max((hi - lo for lo, hi in batches), default=0))
    net.params = step.params
    history = History()
    grad_norms = GradNorms(net.arch.num_layers)
    start = time.perf_counter()

    def end_epoch(epoch, lr, train_loss, epoch_start):
        """Evaluate and record the epoch; False (nothing recorded) if it diverged."""
        diagnostics = None
        if settings.diagnostics:  # train accuracy and the activation statistics in one pass
            scores, acts = scores_and_activations(net.arch, net.params, net.bn_state, X_sub, settings.eval_batch_size)
            train_acc, train_eval_loss = accuracy_and_loss(scores, y_sub)
            diagnostics = epoch_diagnostics(net.arch, net.params, acts, grad_norms)
            grad_norms.reset()
        else:
            train_acc, train_eval_loss = evaluate(net, X_sub, y_sub, settings.eval_batch_size)
        val_acc, val_loss = evaluate(net, data.X_val, data.y_val, settings.eval_batch_size)
        # Every step's loss can be finite while the last update blew the weights up (a huge
        # learning rate): the evaluation's losses are not then. (An empty split's loss is NaN.)
        losses = [(train_loss, 1), (train_eval_loss, len(y_sub)), (val_loss, len(data.y_val))]
        if epoch and (blown := [loss for loss, rows in losses if rows and not math.isfinite(loss)]):
            emit({"kind": "diverged", "epoch": epoch, "iteration": history.iterations, "loss": blown[0]})
            return False
        now = time.perf_counter()
        record = {
            "kind": "epoch", "epoch": epoch, "iteration": history.iterations, "lr": lr,
            "train_loss": train_loss, "train_acc": train_acc, "train_eval_loss": train_eval_loss,
            "val_acc": val_acc, "val_loss": val_loss,
            "epoch_time": now - epoch_start, "elapsed": now - start,
        }
        if diagnostics is not None:
            record["diagnostics"] = diagnostics
        # The untrained net (epoch 0) is the best only until a trained epoch exists.
        if val_acc > history.best_val_acc or history.best_epoch == 0:
            history.best_epoch, history.best_val_acc = epoch, val_acc
            history.best_params = {k: v.copy() for k, v in net.params.items()}
            history.best_state = {k: v.copy() for k, v in net.bn_state.items()}
        history.records.append(record)
        emit(record)
        return True

    def train_epoch(epoch, lr):
        """One pass over a fresh permutation; the mean minibatch loss, or None on divergence."""
        order = order_rng.permutation(n)
        loss_sum = 0.0
        for lo, hi in batches:
            idx = order[lo:hi]
            loss, net.bn_state = step(X, y, idx, net.bn_state, rng=dropout_rng, lr=lr, max_norm=settings.max_norm)
            history.iterations += 1
            if not math.isfinite(loss):  # the step left the parameters as they were
                emit({"kind": "diverged", "epoch": epoch, "iteration": history.iterations, "loss": loss})
                return None
            if settings.diagnostics:
                grad_norms.add(step.grads)
            loss_sum += loss
            if settings.log_every and history.iterations % settings.log_every == 0:
                emit({"kind": "iteration", "epoch": epoch, "iteration": history.iterations, "loss": loss})
        return loss_sum / len(batches)

    end_epoch(0, None, None, start)  # the untrained net, for the curves' first point
    # A diverging run overflows on its way to a non-finite loss, which is detected and
    # reported; NumPy's overflow warnings would only repeat it on stderr.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, settings.epochs + 1):
            epoch_start = time.perf_counter()
            lr = learning_rate_at(epoch, settings.learning_rate, settings.lr_decay)
            train_loss = train_epoch(epoch, lr)
            if train_loss is None or not end_epoch(epoch, lr, train_loss, epoch_start):
                history.status = "diverged"
                break
            if settings.patience and epoch - history.best_epoch >= settings.patience and epoch < settings.epochs:
                history.stopped_epoch = epoch
                emit({"kind": "early_stop", "epoch": epoch, "best_epoch": history.best_epoch,
                      "best_val_acc": history.best_val_acc, "patience": settings.patience})
                break
    if history.best_params is not None:
        net.params, net.bn_state = history.best_params, history.best_state
    return history
