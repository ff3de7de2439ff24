"""Process and signal edges: real processes, real signals, each moment made deterministic.

* A sweep SIGKILLed (the OOM killer, ``kill -9``) while its worker pool starts, or once
  its workers train: no worker and no resource tracker outlives it, and whoever reads the
  sweep's output gets EOF.
* Ctrl-C at the edges of a command (while the CLI loads, while typer parses, while NumPy
  loads, inside a weakref callback, during interpreter shutdown): exit 130 and one line.
* A runs folder whose name is not UTF-8, with a strict stdout: the paths print escaped.

The moments are reached by a test-only ``sitecustomize`` (see ``proc_util``) that sends
the signal from inside the process at that moment, not by timing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from proc_util import live_processes_with_env, module_hook

from dropcli.store.runs import find_runs, run_status

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc/self/environ").exists(),
                                reason="POSIX signals, and /proc to find the processes left behind")

MARK = "DROPCLI_EDGES_TEST"  # every process a test starts carries it, workers and trackers too

TINY = """\
name: edge
data: {dataset: digits, num_train: 200, num_val: 100}
model: {hidden_dims: [32]}
train: {epochs: 3}
"""
DIGITS = """\
name: digits
data: {dataset: digits}
model: {hidden_dims: [256, 256]}
train: {epochs: 60}
"""

# SIGKILL this process right after it started its N-th child process (a pool worker).
KILL_AFTER_START = module_hook("DROPCLI_TEST_KILL_AFTER_START", "multiprocessing.process", "BaseProcess", """
def wrap(BaseProcess, count):
    start, started = BaseProcess.start, []

    def start_then_die(self):
        start(self)
        started.append(self.pid)
        if len(started) == int(count):
            os.kill(os.getpid(), 9)

    BaseProcess.start = start_then_die
    return BaseProcess
""")

# Ctrl-C inside a weakref callback, where Python prints an exception and goes on.
SIGINT_IN_CALLBACK = module_hook("DROPCLI_TEST_SIGINT_IN_CALLBACK", "dropcli.experiment.run", "_train_into", """
def wrap(train_into, value):
    import signal, weakref

    def train_into_after_a_callback(*args, **kwargs):
        class Thing:
            pass

        def callback(ref):
            signal.raise_signal(signal.SIGINT)
            for _ in range(3):  # a backward jump: Python runs the signal handler here
                pass

        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing  # the callback runs now
        return train_into(*args, **kwargs)

    return train_into_after_a_callback
""")

# Ctrl-C during typer's parsing of the command line (in --version's eager callback,
# which prints through dropcli.cli.app.out).
SIGINT_WHILE_PARSING = module_hook("DROPCLI_TEST_SIGINT_WHILE_PARSING", "dropcli.cli.app", "out", """
def wrap(console, value):
    import signal

    class Interrupted:
        def __getattr__(self, name):
            return getattr(console, name)

        def print(self, *args, **kwargs):
            signal.raise_signal(signal.SIGINT)
            return console.print(*args, **kwargs)

    return Interrupted()
""")

# Ctrl-C as the process imports $DROPCLI_TEST_SIGINT_IMPORTING ("MODULE" or
# "MODULE:ImportError": then the import fails with an ImportError raised while the
# KeyboardInterrupt was handled, as a library that wraps its import errors would).
SIGINT_IMPORTING = '''
def _install_importing():
    import os, signal, sys

    VALUE = os.environ.get("DROPCLI_TEST_SIGINT_IMPORTING")
    if not VALUE:
        return
    module, _, convert = VALUE.partition(":")

    class _Hook:
        def find_spec(self, name, path=None, target=None):
            if name != module:
                return None
            sys.meta_path.remove(self)
            try:
                signal.raise_signal(signal.SIGINT)
                for _ in range(3):  # the handler runs here
                    pass
            except KeyboardInterrupt:
                if not convert:
                    raise
                raise ImportError(f"{module}: its C extensions failed to load")
            return None

    sys.meta_path.insert(0, _Hook())


_install_importing()
'''

# Ctrl-C once the command has ended, while Python shuts down (threading._shutdown waits
# for this non-daemon thread).
SIGINT_AT_SHUTDOWN = '''
def _install_shutdown():
    import os, signal, threading, time

    if not os.environ.get("DROPCLI_TEST_SIGINT_AT_SHUTDOWN"):
        return

    def at_shutdown():
        threading.main_thread().join()  # returns once the main thread has ended: Python is shutting down
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)  # the main thread waits for this thread meanwhile

    threading.Thread(target=at_shutdown, name="sigint-at-shutdown").start()


_install_shutdown()
'''


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("edges")
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text("\n".join(
        [KILL_AFTER_START, SIGINT_IN_CALLBACK, SIGINT_WHILE_PARSING, SIGINT_IMPORTING, SIGINT_AT_SHUTDOWN]))
    (root / "tiny.yaml").write_text(TINY)
    (root / "digits.yaml").write_text(DIGITS)
    return root


def _console_script() -> list[str]:
    """What the installed ``dropcli`` script runs: pyproject's [project.scripts] entry, called."""
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    module, function = pyproject["project"]["scripts"]["dropcli"].split(":")
    return ["-c", f"import sys; sys.argv[0] = 'dropcli'; from {module} import {function}; sys.exit({function}())"]


def _start(lab, marker, *args, entry=("-m", "dropcli"), **env):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lab / "hook"), os.environ.get("PYTHONPATH", "")]),
           "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "200", MARK: marker, **env}
    return subprocess.Popen([sys.executable, *entry, *args], cwd=lab, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="backslashreplace", start_new_session=True)


def _left_behind(marker, within: float) -> list[int]:
    """The processes still carrying ``marker`` once they had ``within`` seconds to exit."""
    deadline = time.monotonic() + within
    while (pids := live_processes_with_env(MARK, marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _messages(err: str) -> list[str]:
    """stderr without rich's progress renders and train's "data: ..." line (what a person
    reads as messages about how the command ended)."""
    progress = re.compile(r"^((\S+ epochs|runs) .*\d+/\d+|data: \S+, train \d)")
    return [line for line in err.splitlines() if line.strip() and not progress.match(line)]


# --- 1. a sweep killed while its worker pool starts --------------------------------------------


def _lock_pid(run_dir):
    try:
        return json.loads((run_dir / "lock").read_text()).get("pid")
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("moment", ["after its first worker started", "after both workers started",
                                    "once a worker trains"])
def test_a_sweep_killed_while_its_pool_starts_leaves_no_process(lab, moment):
    """The sweep's process alone is SIGKILLed; its workers and multiprocessing's resource
    tracker must follow it, so that the pipes of its stdout and stderr reach EOF."""
    marker = f"kill-{moment.split()[-2]}-{os.getpid()}"
    runs = lab / f"runs-{marker}"
    args = ["sweep", "digits.yaml", "--keep", "0.25,0.5,0.75,1", "--seeds", "0,1", "-j", "2", "--runs-dir", str(runs)]
    starts = {"after its first worker started": "1", "after both workers started": "2"}.get(moment)
    proc = _start(lab, marker, *args, **({"DROPCLI_TEST_KILL_AFTER_START": starts} if starts else {}))
    try:
        if starts is None:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and not any(
                    _lock_pid(p.parent) not in (None, proc.pid) for p in runs.glob("*/*/lock")):
                time.sleep(0.01)
            assert proc.poll() is None, proc.communicate()
            proc.kill()
        try:
            proc.communicate(timeout=30)  # EOF on stdout and stderr: no process holds them any more
        except subprocess.TimeoutExpired:
            pytest.fail(f"{moment}: the sweep's output never reached EOF; still running: "
                        f"{live_processes_with_env(MARK, marker)}")
        assert proc.returncode == -signal.SIGKILL
        assert _left_behind(marker, within=10) == []
        assert all(run_status(p) != "running" for p in find_runs(runs))  # each run read interrupted, or never began
    finally:
        _kill(live_processes_with_env(MARK, marker))
        proc.kill()
        proc.communicate()


# --- 2. Ctrl-C at the edges of a command --------------------------------------------------------


@pytest.mark.parametrize("entry", ["python -m dropcli", "the dropcli script"])
def test_ctrl_c_while_the_cli_loads_is_one_line_and_130(lab, entry):
    proc = _start(lab, "loading", "train", "tiny.yaml", "--runs-dir", "runs-loading",
                  entry=("-m", "dropcli") if entry.startswith("python") else _console_script(),
                  DROPCLI_TEST_SIGINT_IMPORTING="typer")
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, _messages(err)) == (130, ["interrupted"]), err
    assert not (lab / "runs-loading").exists()


def test_ctrl_c_while_typer_parses_is_one_line_and_130(lab):
    # typer turns a KeyboardInterrupt during parsing into a silent exit 130
    proc = _start(lab, "parsing", "--version", DROPCLI_TEST_SIGINT_WHILE_PARSING="1")
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, _messages(err)) == (130, ["interrupted"]), err


def test_ctrl_c_that_turns_numpys_import_into_an_import_error_is_an_interrupt(lab):
    proc = _start(lab, "numpy", "train", "tiny.yaml", "--runs-dir", "runs-numpy",
                  DROPCLI_TEST_SIGINT_IMPORTING="numpy:ImportError")
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, _messages(err)) == (130, ["interrupted"]), err
    assert not (lab / "runs-numpy").exists() or not find_runs(lab / "runs-numpy")


def test_ctrl_c_raised_inside_a_weakref_callback_still_interrupts(lab):
    # Python prints "Exception ignored in: <function callback>" and goes on; dropcli sends
    # the signal again, so the run ends interrupted instead of training on.
    runs = lab / "runs-callback"
    proc = _start(lab, "callback", "train", "tiny.yaml", "--set", "train.epochs=2000", "--runs-dir", str(runs),
                  DROPCLI_TEST_SIGINT_IN_CALLBACK="1")
    out, err = proc.communicate(timeout=120)
    messages = _messages(err)
    assert proc.returncode == 130 and len(messages) == 1 and messages[0].startswith("interrupted"), err
    assert [run_status(p) for p in find_runs(runs)] in ([], ["interrupted"])


def test_ctrl_c_during_interpreter_shutdown_is_one_line_and_130(lab):
    proc = _start(lab, "shutdown", "train", "tiny.yaml", "--runs-dir", "runs-shutdown",
                  DROPCLI_TEST_SIGINT_AT_SHUTDOWN="1")
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, _messages(err)) == (130, ["interrupted"]), err
    assert "run folder:" in out  # what the command printed before is kept
    assert [run_status(p) for p in find_runs(lab / "runs-shutdown")] == ["completed"]


# --- 3. paths that are not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["train", "tiny.yaml"], ["sweep", "tiny.yaml", "--keep", "0.5,1", "-j", "1"]])
def test_a_runs_folder_whose_name_is_not_utf8_prints_escaped(lab, command):
    """``--runs-dir $'runs\\xff'`` with a strict stdout: the run is stored under the real
    bytes and every path prints with the byte escaped, never a UnicodeEncodeError."""
    name = f"runs-{command[0]}\udcff"  # os.fsdecode(b"runs-...\xff")
    proc = _start(lab, "bytes", *command, "--runs-dir", name, PYTHONIOENCODING="utf-8:strict")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err
    shown = f"runs-{command[0]}\\xff"
    assert f"{shown}/" in out, out
    assert "\\udcff" not in out + err and "\\xdcff" not in out + err
    assert all(run_status(p) == "completed" for p in find_runs(lab / name)) and find_runs(lab / name)
    assert os.fsencode(lab / name).endswith(b"\xff")


def test_plot_of_a_runs_folder_whose_name_is_not_utf8_writes_its_reports(lab):
    name = "runs-plot\udcff"
    proc = _start(lab, "bytes-train", "train", "tiny.yaml", "--runs-dir", name, PYTHONIOENCODING="utf-8:strict")
    assert proc.communicate(timeout=300) and proc.returncode == 0
    proc = _start(lab, "bytes-plot", "plot", name, PYTHONIOENCODING="utf-8:strict")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err
    index = (lab / name / "report.md").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    assert "runs-plot\\xff" in index, index


def test_an_error_naming_a_path_that_is_not_utf8_shows_its_byte(lab):
    proc = _start(lab, "bytes-error", "train", "missing\udcff.yaml", PYTHONIOENCODING="utf-8:strict")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and len(_messages(err)) == 1 and "missing\\xff.yaml" in err, err
