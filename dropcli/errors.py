"""The library's exceptions: one small hierarchy the CLI turns into one-line messages."""


class DropcliError(Exception):
    """Base class: a problem the user can fix, described in one line.

    ``key``: the setting to blame (``"data.num_train"``), when the message names it but
    cannot say where it was set; whoever read the config adds that (the CLI: the file's
    line or the flag), so no one has to find the key in the message.
    """

    exit_code = 2

    def __init__(self, *args, key: str | None = None):
        super().__init__(*args)
        self.key = key


class ConfigError(DropcliError, ValueError):
    """A config file, a ``--set`` override or a flag is invalid."""


class DataError(DropcliError):
    """A dataset cannot be found, read or understood."""


class RunStoreError(DropcliError):
    """A runs folder or one of its files cannot be read or written."""


class ExecutorError(DropcliError):
    """Where the runs should train is unusable: a missing optional dependency, a
    scheduler that cannot be reached, workers that cannot run dropcli."""
