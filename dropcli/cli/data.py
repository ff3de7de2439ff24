"""``dropcli data``: which datasets are here, fetch one, describe one.

A typer sub-app, registered on the main app as ``dropcli data`` by ``dropcli.cli.main``.
Its choices come from the config's vocabulary (every ``data.dataset``) and from the data
catalog (the downloadable ones), both importable without NumPy.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from dropcli.cli.app import err, handle_errors, out, stopping
from dropcli.config.vocabulary import DATASETS
from dropcli.data.catalog import CATALOG
from dropcli.errors import DataError

data_app = typer.Typer(
    help="Datasets: list what is here, fetch one (a verified download), describe one.\n\n"
    "Downloads go to the cache folder ($DROPCLI_DATA_DIR, else the user cache); "
    "data.path in a config points at your own copy instead.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _enum(name: str, values) -> type[Enum]:
    """A str Enum of ``values`` for typer (member names are identifiers: fashion_mnist)."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


def _or(values) -> str:
    """``a, b or c``."""
    return f"{', '.join(values[:-1])} or {values[-1]}"


Dataset = _enum("Dataset", DATASETS)  # the values of data.dataset
Downloadable = _enum("Downloadable", CATALOG)  # those dropcli can download


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


@data_app.command("list")
@handle_errors
def list_():
    """List the datasets and which of them are in the cache folder.

    Example:  dropcli data list
    """
    from dropcli.data.datasets import BUILT_IN, NAMES, data_dir, status

    table = Table(title=f"datasets (cache folder {data_dir()})")
    for col in ("dataset", "what", "here", "download"):
        table.add_column(col)
    for name, what in NAMES.items():
        if name in CATALOG:
            here, size = status(name)["state"], _size(CATALOG[name].download_size)
        else:
            here, size = ("built in", "-") if name in BUILT_IN else ("data.path", "-")
        style = {"decoded": "green", "downloaded": "green", "partial": "yellow"}.get(here, "")
        table.add_row(name, what, f"[{style}]{here}[/]" if style else here, size)
    out.print(table)
    out.print("fetch one:  dropcli data fetch NAME      details:  dropcli data info NAME")


@data_app.command()
@handle_errors
def fetch(
    name: Annotated[Downloadable, typer.Argument(metavar="NAME", help=f"{_or(list(CATALOG))}.")],
):
    """Download a dataset into the cache folder, check its SHA-256 and decode it once.

    Files already in the cache folder are not downloaded again.

    Example:  dropcli data fetch cifar10
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from dropcli.data.datasets import fetch as fetch_dataset

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=err)
    tasks = {}

    def on_progress(file, done, total):
        if file not in tasks:
            progress.start()
            tasks[file] = progress.add_task(file, total=total)
        progress.update(tasks[file], completed=done, total=total)

    with stopping(progress):
        loaded = fetch_dataset(name.value, progress=on_progress)
    how = {"download": "downloaded and checked", "cache": "already in the cache folder"}[loaded.located.origin]
    out.print(f"{name.value}: {how}: {', '.join(str(p) for p in loaded.located.paths)}")
    a = loaded.arrays
    out.print(f"decoded: {len(a['X_train'])} training and {len(a['X_test'])} test examples of "
              f"{a['X_train'].shape[1]} features; train with  data: {{dataset: {name.value}}}")


@data_app.command()
@handle_errors
def info(
    name: Annotated[Dataset, typer.Argument(metavar="NAME", help=f"{_or(DATASETS)}.")],
    path: Annotated[Optional[Path], typer.Option(
        "--path", help="Read this copy (what data.path would be) and show its splits.")] = None,
):
    """Describe a dataset: where it comes from, its checksums, its splits, what is here.

    With --path: check your copy (folder, CIFAR-10 archive, .npz) and show its splits.

    Example:  dropcli data info npz --path my_arrays.npz
    """
    from dropcli.data.datasets import BUILT_IN, NAMES, status
    from dropcli.data.load import inspect_data

    if name.value in BUILT_IN and path is not None:
        raise DataError(f"--path: {name.value} is built in and reads no file, so {path} would be ignored; "
                        f"--path is for npz, mnist, fashion-mnist and cifar10")
    # read (and validate) first, so that a bad file is the only thing printed
    found = inspect_data(name.value, path) if path is not None or name.value in BUILT_IN else None
    out.print(f"[bold]{name.value}[/]: {NAMES[name.value]}")
    if name.value in CATALOG:
        spec, st = CATALOG[name.value], status(name.value)
        out.print(f"source: {spec.homepage}\nreference: {spec.reference}")
        out.print(f"splits: {spec.num_train - spec.num_val} train / {spec.num_val} validation (the last "
                  f"{spec.num_val} training examples) / {spec.num_test} test; {spec.input_dim} features, "
                  f"{spec.num_classes} classes: {', '.join(spec.class_names)}")
        out.print(f"cache folder: {st['folder']} ({st['state']})")
        for file, local in st["files"]:  # full hashes, one per line, so they can be compared by hand
            out.print(f"  {file.name}  {_size(file.size)}  sha256 {file.sha256}  "
                      f"{'here' if local else 'missing'}", soft_wrap=True, highlight=False)
    elif name.value == "mnist1d":
        _print_mnist1d_provenance()
    elif name.value == "npz" and path is None:
        out.print("give your file as data.path; it holds X_train, y_train, X_val, y_val [, X_test, y_test], "
                  "or X, y (split 80/10/10 by the seed); see the splits with --path FILE")
    if found is not None:
        _print_splits(name.value, path, found)


def _print_mnist1d_provenance():
    """The credit, the generator that made the shipped arrays, the split, and the arrays' digest."""
    from dropcli.data import mnist1d

    record, digest = mnist1d.provenance(), mnist1d.array_digest(mnist1d.read_arrays())
    generator, split = record["generator"], record["split"]
    out.print(f"source: {record['source']} (licence {record['license']})\nreference: {record['reference']}")
    out.print(f"generated with the reference generator {generator['package']} {generator['version']}: "
              f"{generator['call']}, seed {record['args']['seed']}, X rounded to float32 (dropcli's "
              f"scripts/make_mnist1d.py)")
    out.print(f"splits: train = {split['train']}, validation = {split['val']}, test = {split['test']}; "
              f"the same for every seed")
    same = "as recorded" if digest == record["sha256"] else f"recorded: {record['sha256']}"
    out.print(f"arrays: sha256 {digest} ({same})", soft_wrap=True, highlight=False)


def _print_splits(name: str, path: Optional[Path], found: dict):
    table = Table(title=f"{name} as training sees it{f' ({path})' if path else ''}: "
                        f"{found['input_dim']} features, {found['num_classes']} classes")
    for col in ("split", "examples", "stored as", "examples per class (min..max)"):
        table.add_column(col)
    for split, s in found["splits"].items():
        counts = s["per_class"]
        table.add_row(split, str(s["examples"]), s["dtype"], f"{min(counts)}..{max(counts)}")
    out.print(table)
