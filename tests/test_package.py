"""The package from a notebook: a few names at ``dropcli``, looked up when first used."""

import importlib
import subprocess
import sys

import pytest

import dropcli
import dropcli.config

NOTEBOOK_NAMES = ("load_config", "train_run", "plan_sweep", "run_sweep", "read_run", "find_runs", "read_sweep",
                  "plot_all")


def _imported_after(code: str) -> set[str]:
    check = f"import sys; {code}; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.split())


def test_importing_dropcli_or_the_config_vocabulary_is_cheap():
    for code in ("import dropcli", "from dropcli.config.vocabulary import VARIANTS"):
        heavy = {"numpy", "pydantic", "yaml", "matplotlib", "typer"} & _imported_after(code)
        assert not heavy, f"{code} imports {sorted(heavy)}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_notebook_name_is_the_librarys_own(name):
    found = getattr(dropcli, name)
    assert found.__module__.startswith("dropcli.") and getattr(sys.modules[found.__module__], name) is found
    assert name in dir(dropcli)


def test_the_notebook_names_are_all_there_is():
    assert sorted(dropcli.__all__) == sorted(["__version__", *NOTEBOOK_NAMES])


def test_the_config_package_exports_its_api():
    for name in dropcli.config.__all__:
        assert getattr(dropcli.config, name) is not None, name
    assert dropcli.config.load_config is dropcli.load_config
    assert dropcli.config.VARIANTS is importlib.import_module("dropcli.config.vocabulary").VARIANTS


def test_an_unknown_name_is_an_attribute_error():
    for package in (dropcli, dropcli.config):
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            package.nope  # noqa: B018
