"""summary.csv, rewritten after every run of a sweep, is written from the summaries in hand:
a sweep of N runs must not read N runs' files N times."""

import pytest

from dropcli.config import load_config
from dropcli.store.layout import SWEEP_CSV
from dropcli.sweep import summary as summary_module
from dropcli.sweep.grid import plan_sweep
from dropcli.sweep.run import run_sweep
from dropcli.sweep.summary import write_summary_csv


def test_the_csv_from_summaries_in_hand_equals_the_csv_from_disk(tiny_config, tmp_path, monkeypatch):
    config = load_config(tiny_config)
    plan = plan_sweep(config.model_copy(update={"sweep": {"dropout.keep_prob": (0.5, 1.0), "seed": (0, 1)}}),
                      tmp_path / "runs")
    summaries = run_sweep(plan, jobs=1)
    from_disk = (plan.path / SWEEP_CSV).read_text()
    known = {run.run_id: s for run, s in zip(plan.runs, summaries)}

    def no_disk(path):
        raise AssertionError(f"read {path} although its summary was in hand")

    monkeypatch.setattr(summary_module, "read_summary", no_disk)
    (plan.path / SWEEP_CSV).unlink()
    write_summary_csv(plan, known)
    assert (plan.path / SWEEP_CSV).read_text() == from_disk
    with pytest.raises(AssertionError, match="although its summary was in hand"):
        write_summary_csv(plan, {})  # the disk is still read for what is not in hand
