"""The training loop: determinism, fairness of comparisons, overfitting, divergence."""

import math
import warnings

import numpy as np
import pytest

from dropcli.config import Config
from dropcli.data.load import load_data
from dropcli.nn import FullyConnectedNet, streams
from dropcli.nn.step import TrainStep
from dropcli.train.loop import TrainSettings, evaluate, fit, learning_rate_at

TIMING = ("epoch_time", "elapsed")


def run(keep=0.5, seed=0, epochs=3, num_train=200, **kw):
    rngs = streams(seed)
    cfg = Config().data.model_copy(update={"num_train": num_train, "num_val": 100})
    data = load_data(cfg, rngs["data"])
    net = FullyConnectedNet([64, 64], input_dim=data.input_dim, num_classes=10, keep_prob=keep,
                            weight_scale="he", seed=seed)
    records = []
    history = fit(net, data, TrainSettings(epochs=epochs, batch_size=50, **kw), order_rng=rngs["order"],
                  dropout_rng=rngs["dropout"], eval_rng=rngs["eval"], callback=records.append)
    return net, history, records


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_same_seed_same_history_bit_for_bit():
    _, _, a = run()
    _, _, b = run()
    assert strip(a) == strip(b)
    _, _, c = run(seed=1)
    assert strip(a) != strip(c)


def test_dropout_on_or_off_leaves_init_and_batch_order_unchanged(monkeypatch):
    seen = []
    real = TrainStep.__call__

    def spy(self, X, y, idx, state, **kw):
        seen[-1].append(y[idx])
        return real(self, X, y, idx, state, **kw)

    monkeypatch.setattr(TrainStep, "__call__", spy)
    inits = []
    for keep in (1.0, 0.5, 0.25):
        seen.append([])
        inits.append(FullyConnectedNet([64], input_dim=64, num_classes=10, keep_prob=keep, seed=0).params["W1"])
        run(keep=keep, epochs=2)
    assert all(np.array_equal(inits[0], w) for w in inits[1:])
    assert len(seen[0]) == 2 * 4  # 200 examples / batch 50, two epochs
    for other in seen[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(seen[0], other))


def test_each_epoch_visits_every_example_once(monkeypatch):
    seen = []
    real = TrainStep.__call__
    monkeypatch.setattr(TrainStep, "__call__", lambda self, X, y, idx, *a, **kw: (seen.append(X[idx]),
                                                                                  real(self, X, y, idx, *a, **kw))[1])
    rngs = streams(0)
    data = load_data(Config().data.model_copy(update={"num_train": 130, "num_val": 50}), rngs["data"])
    net = FullyConnectedNet([16], input_dim=64, num_classes=10, seed=0)
    fit(net, data, TrainSettings(epochs=2, batch_size=50), order_rng=rngs["order"], dropout_rng=rngs["dropout"],
        eval_rng=rngs["eval"])
    assert [len(x) for x in seen] == [50, 50, 30, 50, 50, 30]
    for epoch in (seen[:3], seen[3:]):
        rows = np.concatenate(epoch)
        assert np.array_equal(np.sort(rows, axis=0), np.sort(data.X_train, axis=0))
    assert not np.array_equal(np.concatenate(seen[:3]), np.concatenate(seen[3:]))  # fresh permutation


def test_small_net_overfits_50_examples():
    net, history, records = run(keep=1.0, epochs=60, num_train=50, learning_rate=3e-3)
    assert records[-1]["train_acc"] == 1.0


def test_records_have_every_field_and_epoch_zero():
    _, history, records = run(epochs=2)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records[0]["train_loss"] is None
    for r in records[1:]:
        for key in ("train_loss", "train_acc", "train_eval_loss", "val_acc", "val_loss", "lr", *TIMING):
            assert isinstance(r[key], float), key
    assert history.status == "completed"


def test_net_ends_with_best_params():
    net, history, records = run(epochs=4)
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 100}), streams(0)["data"])
    acc, _ = evaluate(net, data.X_val, data.y_val)
    assert acc == history.best_val_acc == max(r["val_acc"] for r in records)


def test_divergence_stops_the_run():
    _, history, records = run(keep=1.0, epochs=3, optimizer="sgd", learning_rate=1e30)
    assert history.status == "diverged"


@pytest.mark.parametrize("diagnostics", [True, False])
def test_a_step_that_blows_the_weights_up_ends_the_run_diverged_in_its_epoch(diagnostics):
    """The fuzzer's case: float64, sgd, learning rate 1e100. Both steps of epoch 1 have a
    finite loss, but the weights they leave (~1e100) give the epoch's evaluation a
    non-finite one: the run diverged in epoch 1 (it used to fail with an OverflowError in
    the diagnostics, or to keep the blown-up epoch as the best)."""
    rngs = streams(0)
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 100}), rngs["data"],
                     dtype=np.float64)
    net = FullyConnectedNet([32], input_dim=64, num_classes=10, weight_scale="he", dtype=np.float64, seed=0)
    initial = {k: v.copy() for k, v in net.params.items()}
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing on stderr either
        history = fit(net, data, TrainSettings(optimizer="sgd", learning_rate=1e100, epochs=3, batch_size=100,
                                               diagnostics=diagnostics),
                      order_rng=rngs["order"], dropout_rng=rngs["dropout"], eval_rng=rngs["eval"],
                      callback=records.append)
    assert history.status == "diverged"
    assert [(r["kind"], r["epoch"], r["iteration"]) for r in records] == [("epoch", 0, 0), ("diverged", 1, 2)]
    assert not math.isfinite(records[-1]["loss"])
    # no trained epoch was recorded, so the net keeps the untrained (finite) weights
    assert all(np.array_equal(net.params[k], initial[k]) for k in initial)


def test_evaluating_a_net_with_huge_weights_gives_its_loss_without_warnings():
    net, _, _ = run(epochs=1)
    net.params = {k: v * 1e30 for k, v in net.params.items()}  # float32: the scores overflow
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 100}), streams(0)["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc, loss = evaluate(net, data.X_val, data.y_val)
    assert 0 <= acc <= 1 and not math.isfinite(loss)


def test_learning_rate_decays_after_each_epoch():
    assert learning_rate_at(1, 0.1, 0.5) == 0.1
    assert learning_rate_at(3, 0.1, 0.5) == pytest.approx(0.025)
    _, _, records = run(epochs=3, lr_decay=0.5, learning_rate=1e-3)
    assert [r["lr"] for r in records[1:]] == pytest.approx([1e-3, 5e-4, 2.5e-4])


def test_evaluate_in_batches_equals_one_batch():
    net, _, _ = run(epochs=1)
    data = load_data(Config().data.model_copy(update={"num_train": 200, "num_val": 100}), streams(0)["data"])
    assert evaluate(net, data.X_train, data.y_train, batch_size=7) == pytest.approx(
        evaluate(net, data.X_train, data.y_train, batch_size=1000), rel=1e-6)


def test_float32_and_float64_reach_the_same_accuracy():
    accs = {}
    for dtype in (np.float32, np.float64):
        rngs = streams(0)
        data = load_data(Config().data.model_copy(update={"num_train": 1000}), rngs["data"], dtype=dtype)
        net = FullyConnectedNet([128], input_dim=64, num_classes=10, keep_prob=0.5, weight_scale="he",
                                dtype=dtype, seed=0)
        h = fit(net, data, TrainSettings(epochs=5), order_rng=rngs["order"], dropout_rng=rngs["dropout"],
                eval_rng=rngs["eval"])
        accs[dtype] = h.records[-1]["val_acc"]
    # Same masks and batches: the two precisions differ only by rounding; on 300 validation
    # examples that moves at most a handful of predictions.
    assert abs(accs[np.float32] - accs[np.float64]) <= 3 / 300 + 1e-9


def test_the_untrained_net_is_never_kept_once_an_epoch_is_trained(monkeypatch):
    """Even when epoch 0 scores best on validation, the kept parameters are a trained
    epoch's (the one runner's summary names), not the initial weights."""
    import dropcli.train.loop as train

    val_accs = iter([0.9, 0.2, 0.4, 0.3])  # epochs 0..3: the untrained net looks best
    real = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda net, X, y, batch_size=1000: (next(val_accs), real(net, X, y)[1]))
    net, history, records = run(epochs=3)
    assert [r["val_acc"] for r in records] == [0.9, 0.2, 0.4, 0.3]
    assert history.best_epoch == 2 and history.best_val_acc == 0.4
    init = FullyConnectedNet([64, 64], input_dim=64, num_classes=10, keep_prob=0.5, weight_scale="he", seed=0)
    assert not np.array_equal(net.params["W1"], init.params["W1"])


def test_with_batchnorm_a_one_row_remainder_joins_the_batch_before(monkeypatch):
    from dropcli.train.loop import minibatches

    assert minibatches(101, 50) == [(0, 50), (50, 100), (100, 101)]
    assert minibatches(101, 50, min_rows=2) == [(0, 50), (50, 101)]
    assert minibatches(102, 50, min_rows=2) == [(0, 50), (50, 100), (100, 102)]
    assert minibatches(1, 50, min_rows=2) == [(0, 1)]  # nothing to join
    sizes = []
    real = TrainStep.__call__
    monkeypatch.setattr(TrainStep, "__call__", lambda self, X, y, idx, *a, **kw: (sizes.append(len(idx)),
                                                                                  real(self, X, y, idx, *a, **kw))[1])
    rngs = streams(0)
    data = load_data(Config().data.model_copy(update={"num_train": 101, "num_val": 50}), rngs["data"])
    for norm, expected in ((None, [50, 50, 1]), ("batchnorm", [50, 51])):
        sizes.clear()
        net = FullyConnectedNet([16], input_dim=64, num_classes=10, normalization=norm, seed=0)
        history = fit(net, data, TrainSettings(epochs=1, batch_size=50), order_rng=streams(0)["order"],
                      dropout_rng=rngs["dropout"], eval_rng=rngs["eval"])
        assert sizes == expected
        assert history.status == "completed"
        if norm:  # the last step moved the first layer: a 1-row batch would give it a zero gradient
            assert np.all(np.isfinite(net.bn_state["running_var1"])) and net.bn_state["running_var1"].min() > 0


def test_meta_json_names_each_random_stream_so_it_can_be_rebuilt(tmp_path):
    import json

    from dropcli.experiment.run import train_run

    config = Config().model_copy(update={"seed": 3})
    config = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 1})})
    summary = train_run(config, tmp_path)
    meta = json.loads((tmp_path / summary["run_id"] / "meta.json").read_text())
    ours = streams(3)
    for name, spec in meta["random_streams"].items():
        rebuilt = np.random.Generator(np.random.PCG64(np.random.SeedSequence(spec["entropy"], spawn_key=spec["spawn_key"])))
        assert rebuilt.random() == ours[name].random(), name
