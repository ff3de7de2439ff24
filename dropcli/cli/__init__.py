"""The command line: ``app`` (typer, one module per command) and ``main``, the console script.

``app`` and what every command shares are in ``app``; the commands in ``train``, ``sweep``,
``check``, ``runs`` (eval, plot, runs) and ``data``; the process (signals, exit codes) in ``main``.
"""

from dropcli.cli.main import app, main

__all__ = ["app", "main"]
