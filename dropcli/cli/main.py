"""The ``dropcli`` process: the commands registered on ``app``, and ``main``, which owns the
signals: every SIGINT or SIGTERM ends in exit 130 and one line, whenever it comes.

Each command module adds its commands to ``app`` when imported, in the order
``dropcli --help`` lists them.
"""

from __future__ import annotations

import contextlib
import os
import sys

from dropcli.cli import train, sweep, check, runs  # noqa: F401, I001  (registers the commands, in --help order)
from dropcli.cli.app import EXIT_INTERRUPTED, EXIT_OK, app, interrupted_by, say_interrupted, told
from dropcli.cli.data import data_app

app.add_typer(data_app, name="data")

_signals_seen = 0
_signal = None  # the first signal's number
_finishing = False  # main's command has ended: a signal now ends the process itself


def _interrupt(signum, frame):
    """SIGINT and SIGTERM: the first ends the command the way Ctrl-C does (runs marked
    interrupted, workers stopped, exit 130); a second ends the process at once. Once the
    command has ended, one ends the process at once too: raised in interpreter shutdown
    (``threading._shutdown``), a KeyboardInterrupt would be printed and ignored."""
    global _signals_seen, _signal
    _signals_seen += 1
    _signal = _signal or signum
    if _finishing:
        _exit_now(b"" if told() else b"interrupted\n")
    if _signals_seen == 1:
        raise KeyboardInterrupt
    processes = sys.modules.get("dropcli.sweep.processes")
    if processes is not None:
        processes.kill_workers()
    _exit_now(b"\ninterrupted again: stopped at once (runs in progress read 'crashed')\n", flush=False)


def _exit_now(line: bytes, flush: bool = True):
    """Write ``line`` to stderr and exit 130 without Python's shutdown; ``flush`` first what
    was printed (not on a second signal: a pipe nobody reads would block it)."""
    for stream in (sys.stdout, sys.stderr) if flush else ():
        with contextlib.suppress(Exception):  # a signal that landed in a write: the stream is busy
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(2, line)
    os._exit(EXIT_INTERRUPTED)


def _unraisable(hook):
    """``sys.unraisablehook`` that re-sends a swallowed interrupt: a KeyboardInterrupt that
    ``_interrupt`` raised inside a weakref callback or ``__del__`` is printed and ignored
    by Python, and the command would go on as if there had been no Ctrl-C."""

    def unraisable(args):
        global _signals_seen
        if not issubclass(args.exc_type, KeyboardInterrupt) or _signal is None or _signals_seen != 1:
            return hook(args)
        _signals_seen = 0
        # From another thread: raised here, it would land in this hook and be ignored again.
        import _thread

        _thread.start_new_thread(os.kill, (os.getpid(), _signal))

    return unraisable


def main():
    """The ``dropcli`` program: every signal ends in exit 130 and one line."""
    import signal

    global _finishing
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    with contextlib.suppress(AttributeError, ValueError):  # a path that is not UTF-8 prints escaped, never crashes
        if sys.stdout.errors == "strict":
            sys.stdout.reconfigure(errors="backslashreplace")
    try:
        try:
            app()
            code = EXIT_OK
        except SystemExit as e:
            code = e.code
    except BaseException as e:  # the signal came outside a command (typer's own code, say)
        if not interrupted_by(e):
            raise
        code = EXIT_INTERRUPTED
    _finishing = True  # from here on, a signal exits at once (see _interrupt)
    if _signals_seen or code == EXIT_INTERRUPTED:
        # Said once, whoever caught the signal (typer turns one during parsing into a silent
        # exit 130). And exit 130 itself: Python would end with SIGINT instead if the
        # KeyboardInterrupt ever passed through code run by exec (a dataclass being built).
        say_interrupted()
        _exit_now(b"")
    sys.exit(code)
