"""What every command shares: the app, the options, the consoles, errors as one line.

A command parses its arguments, makes one library call and renders the result with rich.
No NumPy here: modules that import it (or pydantic, matplotlib) are imported inside the
commands, so that ``dropcli --help`` starts fast. Bad input of any kind (library
``DropcliError``, a file the OS refuses, a usage error) becomes one red line on stderr and
exit code 2; a run that failed or diverged exits 1. Ctrl-C or SIGTERM interrupts (runs
marked ``interrupted``, exit 130 and one line, whenever it comes: while loading, parsing or
shutting down too); a second one ends the process at once (runs read ``crashed``): see
``main``. The commands live in ``train``, ``sweep``, ``check``, ``runs`` (eval, plot, runs)
and ``data``; the tables they print in ``tables``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from dropcli.errors import DropcliError
from dropcli.report.format import pct as format_pct
from dropcli.version import __version__

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exc
_NO_ARGS = getattr(_click_exc, "NoArgsIsHelpError", ())
_ABORT = getattr(_click_exc, "Abort", None) or getattr(typer.core, "Abort", ())


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad flag value, missing argument) as one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as e:
            e.show()
            sys.exit(e.exit_code)
        except _click_exc.ClickException as e:
            ctx = getattr(e, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else ""
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = " ".join(e.format_message().split())
            err.print(Text("error: ", style="bold red") + Text(f"{where}{message}{hint}"), soft_wrap=True)
            sys.exit(e.exit_code)
        except _ABORT:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Experiments on dropout in fully-connected networks, in pure NumPy.\n\n"
    "Start with:  dropcli sweep --keep 0.25,0.5,1   then   dropcli plot",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def handle_errors(command):
    """Turn library errors into one line and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DropcliError as e:
            _error(str(e))
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # a path the OS refuses: not a folder, no permission, disk full
            where = f"{e.filename}: " if e.filename is not None else ""
            _error(f"{where}{e.strerror or e}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            raise typer.Exit(say_interrupted()) from None
        except ImportError as e:  # a library that turns a Ctrl-C during its import into an ImportError
            if not interrupted_by(e):
                raise
            raise typer.Exit(say_interrupted()) from None

    return wrapper


def _error(message: str) -> None:
    """One line on stderr, whatever the message holds (newlines, control characters)."""
    err.print(Text("error: ", style="bold red") + Text(printable(" ".join(message.split()))), soft_wrap=True)


def printable(text) -> str:
    """``text`` (a path, a message) as characters any terminal encoding can write: a file
    name's bytes that are not UTF-8 (which Python keeps as lone surrogates) and control
    characters become ``\\xNN``, so that ``runs\\xff`` prints instead of crashing."""
    return "".join(c if c.isprintable() else _escaped(c) for c in str(text))


def _escaped(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # the byte os.fsdecode could not decode
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_told = False  # this process said it was interrupted


def say_interrupted(message: str = "interrupted") -> int:
    """The one line a signal ends with (once per process); returns its exit code."""
    global _told
    if not _told:
        _told = True
        err.print(Text(message, style="yellow"), soft_wrap=True)
    return EXIT_INTERRUPTED


def told() -> bool:
    """Whether this process has said it was interrupted."""
    return _told


def interrupted_by(error: BaseException) -> bool:
    """Whether ``error`` is a KeyboardInterrupt or was raised while one was handled."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _version(value: bool):
    if value:
        out.print(f"dropcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
):
    pass


def _runs_dir(value) -> Path:
    if value == "":  # Path("") is the current folder: surely not what was meant
        raise typer.BadParameter("an empty path; give a folder, e.g. --runs-dir runs (or . for this folder)")
    return Path(value)


RunsDir = Annotated[Path, typer.Option("--runs-dir", parser=_runs_dir, help="Where run folders go.")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", help="Override a config key: --set model.reg=0.01 (repeatable).")
]


@contextlib.contextmanager
def config_located(config_path: Optional[Path], given: dict):
    """An error about a setting raised once the config is read (by the data loader:
    ``data.num_train: 5000 is more than ...``, its ``key`` the setting) says where the setting
    was set, as config errors do: the flag that set it (``given``: key -> "--set", "--keep",
    ...), else the config file's line (a sweep axis first), else nothing (a default)."""
    try:
        yield
    except DropcliError as e:
        if e.key is None:
            raise
        from dropcli.config.yaml_io import key_line  # imports pydantic: only when there is an error to place

        line = None if e.key in given or config_path is None else key_line(config_path, e.key)
        where = given.get(e.key) or (line and f"{config_path}:{line}:")
        if not where:
            raise
        raise type(e)(f"{where} {e}", key=e.key) from None


@contextlib.contextmanager
def stopping(progress):
    """Stop ``progress`` (a rich Progress) on the way out, if it started: one that never
    started (input that failed early) would still print a blank line."""
    try:
        yield progress
    finally:
        if progress.live.is_started:
            progress.stop()


# Percentages as the CLI shows them: one decimal and a % sign (reports: two, in % columns).
pct = functools.partial(format_pct, digits=1, unit="%")
