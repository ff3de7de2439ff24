"""The command line: ``app`` (typer, one module per command) and ``main``, the program.

What every command shares is in ``app``; the commands in ``train``, ``sweep``, ``check``,
``runs`` (eval, plot, runs) and ``data``; their tables in ``tables``; the process (signals,
exit codes) in ``main``, which the ``dropcli`` script and ``python -m dropcli`` run through
``dropcli.__main__``.
"""

from dropcli.cli.main import app, main

__all__ = ["app", "main"]
