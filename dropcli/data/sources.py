"""Where a dataset's files are: ``data.path``, else the cache folder, else a download.

The cache folder is ``$DROPCLI_DATA_DIR`` if set, else platformdirs' user cache
(``~/.cache/dropcli/datasets`` on Linux), with one folder per dataset holding the files
as published (``mnist/train-images-idx3-ubyte.gz``, ``cifar10/cifar-10-python.tar.gz``).
Files put there by hand are used like downloaded ones. ``data.path``, when set, is the
only place looked at: a wrong path is an error, never a silent download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dropcli.errors import DataError
from dropcli.data import cifar
from dropcli.data.sniff import Origin
from dropcli.data.catalog import DatasetSpec
from dropcli.data.download import DownloadFailed, Progress, addresses, download

DATA_DIR_ENV = "DROPCLI_DATA_DIR"
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def data_dir() -> Path:
    """The cache folder: ``$DROPCLI_DATA_DIR``, else the user cache folder of dropcli."""
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("dropcli")) / "datasets"


def shown(path: Path) -> str:
    """``path`` for a message; a relative one with the absolute path it resolves to (from the
    current folder), so that the user sees where dropcli looked."""
    return str(path) if path.is_absolute() else f"{path} (resolved to {path.absolute()})"


def dataset_dir(spec: DatasetSpec, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or data_dir()) / spec.name


@dataclass(frozen=True)
class Located:
    """The local files of a dataset and where they were found."""

    paths: tuple[Path, ...]  # idx: the four files in catalog order; cifar: (archive or batches folder,)
    origin: str              # "data.path", "cache" or "download"

    def file_origin(self, spec: DatasetSpec) -> Origin:
        """How a message names one of these files, and what it says to do with a bad one."""
        if self.origin == "data.path":
            return Origin("data.path {path}", "data.path", f"download the file again from {spec.homepage}",
                          "point data.path at the real file")
        return Origin("{path} (in the cache folder)", "data.dataset",
                      f"delete it and run `dropcli data fetch {spec.name}`")


def _idx_candidates(spec: DatasetSpec, folder: Path, name: str) -> list[Path]:
    stem = name.removesuffix(".gz")
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some copies are named
    subfolders = [folder, folder / "raw"]
    if spec.name in _TORCHVISION_FOLDER:
        subfolders.append(folder / _TORCHVISION_FOLDER[spec.name] / "raw")
    return [sub / n for sub in subfolders for n in (f"{stem}.gz", stem, f"{dotted}.gz", dotted)]


def find_in(spec: DatasetSpec, folder: Path) -> list[Path | None]:
    """For each file of ``spec``, the local copy in ``folder`` (or its usual subfolders), or None."""
    folder = Path(folder)
    if spec.format == "idx":
        return [next((p for p in _idx_candidates(spec, folder, f.name) if p.is_file()), None) for f in spec.files]
    for candidate in (folder, folder / cifar.FOLDER):
        if (candidate / cifar.TRAIN_BATCHES[0]).is_file():
            return [candidate]
    archive = folder / cifar.ARCHIVE
    return [archive if archive.is_file() else None]


def expected_files(spec: DatasetSpec) -> str:
    if spec.format == "idx":
        return "the four IDX files " + ", ".join(f.name.removesuffix(".gz") + "[.gz]" for f in spec.files)
    return f"{cifar.ARCHIVE} or its extracted folder {cifar.FOLDER}/"


def from_path(spec: DatasetSpec, path: str | os.PathLike) -> Located:
    """The files at ``data.path`` (a folder, or for CIFAR-10 also the archive itself)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data.path: {shown(path)} does not exist; {spec.name} expects a folder with "
                        f"{expected_files(spec)}", key="data.path")
    if path.is_file():
        if spec.format == "cifar-python":
            return Located((path,), "data.path")
        raise DataError(f"data.path: {path} is a file; {spec.name} expects the folder that holds "
                        f"{expected_files(spec)}", key="data.path")
    found = find_in(spec, path)
    if None in found:
        missing = [f.name for f, p in zip(spec.files, found) if p is None]
        raise DataError(f"data.path: {path} has no {', '.join(missing)} (gzipped or not); {spec.name} expects "
                        f"{expected_files(spec)}, from {spec.homepage}", key="data.path")
    return Located(tuple(found), "data.path")


def locate(spec: DatasetSpec, path=None, *, cache_dir: Path | None = None, mirror: str | None = None,
           progress: Progress | None = None, allow_download: bool = True) -> Located:
    """The dataset's local files: ``path`` if given, else the cache, downloading what is missing."""
    if path is not None:
        return from_path(spec, path)
    folder = dataset_dir(spec, cache_dir)
    found = find_in(spec, folder)
    if None not in found:
        return Located(tuple(found), "cache")
    if not allow_download:
        raise DataError(f"{spec.name} is not in the cache folder {folder}; run `dropcli data fetch {spec.name}`")
    for i, (file, local) in enumerate(zip(spec.files, found)):
        if local is not None:
            continue
        urls = addresses(spec.name, file, spec.urls, mirror)
        try:
            found[i] = download(file, urls, folder, progress)
        except DownloadFailed as e:
            raise DataError(
                f"{spec.name}: {file.name} was not found (data.path is not set; the cache folder {folder} "
                f"does not have it) and could not be downloaded ({'; '.join(e.reasons)}). Download it by "
                f"hand from {spec.homepage} into {folder}, or anywhere and set data.path to its folder"
            ) from None
        except OSError as e:
            raise DataError(f"{spec.name}: cannot write the download into {folder} ({e.strerror or e}); "
                            f"set {DATA_DIR_ENV} to a writable folder, or data.path to your own copy") from None
    return Located(tuple(found), "download")
