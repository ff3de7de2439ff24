"""A Ctrl-C that lands while dropcli exits: after its last exit handler Python puts back the
default SIGINT action, which would kill the process by the signal (exit -2) instead of
ending it with its own code. Real processes, real signals, at random moments around the end."""

import random
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from dropcli.cli import app

TRIES = 40


def test_a_ctrl_c_as_the_command_ends_never_kills_it_by_the_signal(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    assert CliRunner().invoke(app, ["train", str(tiny_config), "--runs-dir", str(runs)]).exit_code == 0
    command = [sys.executable, "-m", "dropcli", "runs", str(runs)]
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    duration = time.perf_counter() - started
    rng = random.Random(0)
    codes = []
    for _ in range(TRIES):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.7, 1.1) * duration)  # late in the command, or as it exits
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err
        codes.append(proc.returncode)
    # 0: it had finished; 130: the command was interrupted, with its one line
    assert set(codes) <= {0, 130}, sorted(codes)
