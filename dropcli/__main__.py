"""``python -m dropcli``.

A signal while the CLI is still loading (typer and rich take a moment) has nothing to
save: it ends the process at once with the usual line and exit code, where Python would
print a KeyboardInterrupt traceback. ``main`` then installs the real handlers.
"""

import os
import signal


def _loading(signum, frame):
    os.write(2, b"interrupted\n")
    os._exit(130)


signal.signal(signal.SIGINT, _loading)
signal.signal(signal.SIGTERM, _loading)

from dropcli.cli import main  # noqa: E402

main()
