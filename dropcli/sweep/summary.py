"""A sweep's summary.csv: one row per run of the plan, its swept values, status and
headline metrics, for pandas (and the table `dropcli sweep` prints)."""

from __future__ import annotations

import csv
import io
import json

from dropcli.store.files import atomic_write_text
from dropcli.store.layout import SWEEP_CSV
from dropcli.store.runs import read_summary
from dropcli.sweep.grid import SweepPlan

CSV_METRICS = (
    ("final_val_acc", ("final", "val_acc")),
    ("best_val_acc", ("best", "val_acc")),
    ("best_epoch", ("best", "epoch")),
    ("final_train_acc", ("final", "train_acc")),
    ("test_acc", ("test", "acc")),
)


def summary_rows(plan: SweepPlan, known: dict | None = None) -> list[dict]:
    """One row per run: its swept values, status and headline metrics. ``known``: summaries
    already in hand, by run id (a sweep rewrites the file after every run: reading every
    run's files each time would cost O(runs^2))."""
    known = known or {}
    rows = []
    for run in plan.runs:
        summary = known.get(run.run_id) or read_summary(plan.path / run.run_id)
        row = {"run_id": run.run_id, "status": summary.get("status")}
        row.update({k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in run.values.items()})
        row["keep_prob"] = run.config.dropout.keep_prob
        row["drop_rate"] = round(1 - run.config.dropout.keep_prob, 12)
        for col, (section, key) in CSV_METRICS:
            row[col] = (summary.get(section) or {}).get(key)
        tr, va = row["final_train_acc"], row["final_val_acc"]
        row["train_val_gap"] = None if tr is None or va is None else tr - va
        examples = summary.get("examples") if isinstance(summary.get("examples"), dict) else {}
        for split in ("train", "val", "test"):  # how many examples the run used (empty: not recorded)
            row[f"num_{split}"] = examples.get(split)
        row["epochs"] = run.config.train.epochs
        row["epochs_completed"] = summary.get("epochs_completed")
        row["stopped_early"] = summary.get("stopped_early")
        row["wall_time"] = summary.get("wall_time")
        rows.append(row)
    return rows


def write_summary_csv(plan: SweepPlan, known: dict | None = None) -> None:
    rows = summary_rows(plan, known)
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(plan.path / SWEEP_CSV, buf.getvalue())
