"""``python -m dropcli`` and the ``dropcli`` console script: both run ``main``.

A signal while the CLI is still loading (typer and rich take a moment) has nothing to
save: it ends the process at once with the usual line and exit code, where Python would
print a KeyboardInterrupt traceback. So ``main`` installs that handler first and only then
imports the CLI, whose own ``main`` installs the real handlers.

At the other end, once the last exit handler has run, Python tears itself down and puts
back the default action of any signal it handled: a Ctrl-C in those tens of milliseconds
would kill the process by SIGINT (exit -2) instead of ending with its code. There is
nothing left to stop by then, so the first exit handler registered, which runs last,
ignores SIGINT and SIGTERM.
"""

import atexit
import os
import signal


def _loading(signum, frame):
    os.write(2, b"interrupted\n")
    os._exit(130)


def _ignore_late_signals():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def main():
    """The ``dropcli`` program."""
    atexit.register(_ignore_late_signals)  # first registered: run last (see above)
    signal.signal(signal.SIGINT, _loading)
    signal.signal(signal.SIGTERM, _loading)
    from dropcli.cli.main import main as run  # only now: a Ctrl-C while it loads is handled

    run()


if __name__ == "__main__":
    main()
