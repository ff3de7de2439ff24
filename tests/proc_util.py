"""Finding the processes a test started, however deep (Linux /proc)."""

from __future__ import annotations

from pathlib import Path


def live_processes_with_env(name: str, value: str) -> list[int]:
    """Live (not zombie) processes whose environment has ``name=value``."""
    pids, marker = [], f"{name}={value}".encode()
    for entry in Path("/proc").iterdir() if Path("/proc/self/environ").exists() else []:
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state not in ("Z", "X"):
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def runner_hook(env: str, attr: str, wrapper: str) -> str:
    """The source of a ``sitecustomize.py`` that, in every Python process started with it
    on PYTHONPATH and ``$env`` set, replaces ``dropcli.experiment.<attr>`` (``attr``:
    "module.name", e.g. "run._train_into") with ``wrap(original, value_of_env)`` as the
    module is imported. ``wrapper`` is the source of that ``wrap`` function (it may use ``os``)."""
    module, name = attr.rsplit(".", 1)
    return module_hook(env, f"dropcli.experiment.{module}", name, wrapper)


def module_hook(env: str, module: str, attr: str, wrapper: str) -> str:
    """``runner_hook`` for any module: the source of a ``sitecustomize.py`` that replaces
    ``<module>.<attr>`` with ``wrap(original, value_of_env)`` as the module is imported.
    Its names stay inside a function, so hooks joined with newlines make one file."""
    return f'''\
"""Test instrumentation (written by tests/proc_util.py): wraps {module}.{attr}."""


def _install():
    import os, sys

    VALUE = os.environ.get({env!r})
    if not VALUE:
        return
    import importlib.abc, importlib.util

{_indent(wrapper, "    ")}

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != {module!r}:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                setattr(module, {attr!r}, wrap(getattr(module, {attr!r}), VALUE))

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Hook())


_install()
'''


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line.strip() else line for line in text.strip("\n").splitlines())
