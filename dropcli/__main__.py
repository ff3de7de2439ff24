"""``python -m dropcli`` and the ``dropcli`` console script: both run ``main``.

A signal while the CLI is still loading (typer and rich take a moment) has nothing to
save: it ends the process at once with the usual line and exit code, where Python would
print a KeyboardInterrupt traceback. So ``main`` installs that handler first and only then
imports the CLI, whose own ``main`` installs the real handlers.
"""

import os
import signal


def _loading(signum, frame):
    os.write(2, b"interrupted\n")
    os._exit(130)


def main():
    """The ``dropcli`` program."""
    signal.signal(signal.SIGINT, _loading)
    signal.signal(signal.SIGTERM, _loading)
    from dropcli.cli.main import main as run  # only now: a Ctrl-C while it loads is handled

    run()


if __name__ == "__main__":
    main()
