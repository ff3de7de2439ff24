"""What the report of one run says: summary, figures, expectation check, variance shift
and Monte-Carlo evaluation, as blocks of ``dropcli.report.doc``."""

from __future__ import annotations

from pathlib import Path

from dropcli.errors import RunStoreError
from dropcli.report.figures.expectation import expectation_layers
from dropcli.report.figures.mc_eval import MC_EVAL_PNG
from dropcli.report.doc import Bullets, Heading, Image, Para, Table
from dropcli.report.format import drop_rate, examples_text, existing, num, pct
from dropcli.store.files import read_json
from dropcli.store.layout import MC_EVAL_FILE, REPORT_HTML
from dropcli.store.runs import RunRecord
from dropcli.report.groups import keep_prob_of


def _run_summary_rows(run: RunRecord) -> list[list]:
    s = run.summary or {}
    final, best, test = s.get("final") or {}, s.get("best") or {}, s.get("test") or {}
    keep = keep_prob_of(run)
    return [
        ["status", run.status + (f" ({s['reason']})" if s.get("reason") else "")],
        ["keep_prob / drop rate", f"{num(keep)} / {drop_rate(keep)}"],
        ["input keep_prob", num(run.value("dropout.input_keep_prob"))],
        ["variant / normalization", f"{run.value('dropout.variant', '-')} / {run.value('model.normalization', '-')}"],
        ["seed", num(run.value("seed"))],
        ["hidden dims / activation", f"{run.value('model.hidden_dims', '-')} / {run.value('model.activation', '-')}"],
        ["max_norm", num(run.value("model.max_norm")) if run.value("model.max_norm") is not None else "off"],
        ["optimizer / learning rate / batch", f"{run.value('train.optimizer', '-')} / "
         f"{num(run.value('train.learning_rate'))} / {num(run.value('train.batch_size'))}"],
        *([["examples", examples_text(s["examples"])]] if isinstance(s.get("examples"), dict) else []),
        ["epochs completed", epochs_text(run)],
        ["final train / val acc (%)", f"{pct(final.get('train_acc'))} / {pct(final.get('val_acc'))}"],
        ["best val acc (%) at epoch", f"{pct(best.get('val_acc'))} at {num(best.get('epoch'))}"],
        ["final train loss (train mode) / val loss", f"{num(final.get('train_loss'))} / {num(final.get('val_loss'))}"],
        ["test acc (%), parameters of the best val epoch", pct(test.get("acc"))],
        ["wall time (s)", num(s.get("wall_time"), 3)],
    ]


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def epochs_completed(run: RunRecord) -> tuple[int, int | None]:
    """(epochs trained, epochs configured), from summary.json or, for a run without one,
    its metrics and config."""
    s = run.summary or {}
    done = _count(s.get("epochs_completed"))
    if done is None:
        done = _count(run.metrics[-1].get("epoch")) if run.metrics else 0
    return done or 0, _count(s.get("epochs")) or _count(run.value("train.epochs"))


def epochs_text(run: RunRecord) -> str:
    """``20 / 20``; ``stopped early at epoch 17 of 50: <why>`` (``train.patience``)."""
    s = run.summary or {}
    done, total = epochs_completed(run)
    if s.get("stopped_early") is True:
        reason = s.get("stop_reason")
        return f"stopped early at epoch {done} of {num(total)}" + (f": {reason}" if isinstance(reason, str) else "")
    patience = _count(s.get("patience"))
    return f"{done} / {num(total)}" + (f" (patience {patience}: did not stop early)"
                                       if patience and run.status == "completed" else "")


def _expectation_blocks(run: RunRecord, level: int) -> list:
    exp = run.expectation
    if exp is None:
        return []
    head = [Heading(level, "Expectation check")]
    layers = expectation_layers(run)
    if not layers:
        return head + [Para(("no dropout layers (keep_prob = input_keep_prob = 1)",))]
    def q(layer, name, key):  # "n/a" where the layer's variant predicts nothing
        value = layer.get(name)
        return "n/a" if isinstance(value, dict) and value.get("applicable") is False else num((value or {}).get(key), 6)

    rows = [[
        str(x.get("layer")), str(x.get("variant", "-")), num(x.get("keep_prob")), drop_rate(x.get("keep_prob")),
        num(x.get("input_mean")),
        q(x, "train_mean", "measured"), q(x, "train_mean", "predicted"), num((x.get("train_mean") or {}).get("z"), 3),
        q(x, "train_var", "measured"), q(x, "train_var", "predicted"),
        q(x, "test_mean", "measured"), q(x, "test_mean", "predicted"),
        q(x, "dropped_fraction", "measured"), q(x, "dropped_fraction", "predicted"),
        "pass" if x.get("pass") else "FAIL",
    ] for x in layers]
    header = ["layer", "variant", "keep_prob", "drop rate", "input mean", "train mean measured", "train mean predicted",
              "z", "train var measured", "train var predicted", "test mean measured", "test mean predicted",
              "dropped fraction (of non-zero inputs)", "1 - keep_prob", "pass"]
    note = (f"{exp.get('split', '?')} split, {exp.get('examples', '?')} examples, {exp.get('draws', '?')} mask draws; "
            f"a quantity passes within {num(exp.get('z_tol'))} standard errors: "
            f"{'PASS' if exp.get('pass') else 'FAIL'}")
    return head + [Para((note,)), Table(header, rows)] + [Image(p, "expectation check") for p in
                                                          existing([run.path / "expectation.png"])]


def _variance_shift_blocks(run: RunRecord, level: int) -> list:
    rows = (run.expectation or {}).get("variance_shift") or []
    if not rows:
        return []
    table = [[str(r.get("layer")), "yes" if r.get("dropout_before") else "no", num(r.get("running_var_mean")),
              num(r.get("actual_var_mean")), num(r.get("shift"), 3), num(r.get("shift_max"), 3)] for r in rows]
    note = ("Per batchnorm layer: the running variance it uses at test time vs the variance its input has at "
            "test time on validation data; shift = mean over units of max(ratio, 1/ratio), 1 = none "
            "(Li et al. 2019). Dropout before a batchnorm layer inflates its training variance.")
    return [Heading(level, "Variance shift"), Para((note,)),
            Table(["layer", "dropout before it", "running var (mean)", "test-time var (mean)", "shift", "max shift"],
                  table)]


def _mc_eval_blocks(run: RunRecord, level: int) -> list:
    try:
        mc = read_json(run.path / MC_EVAL_FILE)
    except RunStoreError:
        return []
    if not mc:
        return []
    rows = []
    for split, s in (mc.get("splits") or {}).items():
        for m in s.get("mc") or []:
            ci = "n/a" if m.get("ci95") is None else f"{100 * m['ci95']:.2f}"
            rows.append([split, num(m.get("T")), f"{pct(m.get('mean'))} ± {ci}", pct(s.get("weight_scaling_acc"))])
    note = (f"Monte-Carlo dropout: softmax averaged over T stochastic passes, {mc.get('repeats')} repeats "
            f"(mean ± 95% CI), against deterministic weight scaling (`dropcli eval`).")
    return [Heading(level, "Weight scaling vs Monte-Carlo averaging"), Para((note,)),
            Table(["split", "T", "MC accuracy (%)", "weight scaling (%)"], rows)] + [
        Image(p, "accuracy vs T") for p in existing([run.path / MC_EVAL_PNG])]


def run_blocks(run: RunRecord, level: int = 1) -> list:
    """The report of one run: summary table, curves, expectation table and figure,
    variance shift (batchnorm runs) and MC evaluation (after `dropcli eval`)."""
    blocks = [Heading(level, f"Run {run.run_id}"), Table(["", "value"], _run_summary_rows(run))]
    blocks += [Image(p, "accuracy and loss per epoch") for p in existing([run.path / "curves.png"])]
    blocks += [Image(p, "training diagnostics: gradient norm, activations, dead units per layer")
               for p in existing([run.path / "diagnostics.png"])]
    blocks += _expectation_blocks(run, level + 1)
    blocks += _variance_shift_blocks(run, level + 1)
    blocks += _mc_eval_blocks(run, level + 1)
    if run.warnings:
        blocks += [Heading(level + 1, "Warnings"), Bullets(run.warnings)]
    return blocks


def run_page(run: RunRecord) -> Path:
    """Where the HTML rendering of the run's report goes: beside its report.md."""
    return run.path / REPORT_HTML
