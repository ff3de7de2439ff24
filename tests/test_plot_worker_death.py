"""A figure worker of `dropcli plot` that dies (the OOM killer, a signal) costs no figure and
no report: what the pool could not draw is drawn in the plotting process."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dropcli.cli import app
from proc_util import module_hook

# Every forked worker kills itself, by SIGKILL as the OOM killer would, on its first task.
KILL_WORKERS = module_hook("DROPCLI_TEST_KILL_PLOT_WORKERS", "dropcli.report.render", "_guarded", """
def wrap(guarded, value):
    import signal
    parent = os.getpid()

    def run(task):
        if os.getpid() != parent:  # a forked worker; the plotting process draws on
            os.kill(os.getpid(), signal.SIGKILL)
        return guarded(task)
    return run
""")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="plot draws in this process with one core")
def test_plot_survives_its_workers_being_killed(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["sweep", str(tiny_config), "--keep", "0.5,1", "--seeds", "0,1", "-j", "1",
                                      "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "sitecustomize.py").write_text(KILL_WORKERS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hooks"), "DROPCLI_TEST_KILL_PLOT_WORKERS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dropcli", "plot", str(runs)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    run_dirs = [p.parent for p in runs.glob("*/*/config.yaml")]
    assert len(run_dirs) == 4
    for run in run_dirs:
        dropout = "-keep0.5-" in run.name  # keep_prob 1 has no dropout layer to check
        for name in ("curves.png", "diagnostics.png", "report.md", "report.html", *["expectation.png"] * dropout):
            assert (run / name).stat().st_size, (run, name)
    assert (runs / "report.html").is_file()
