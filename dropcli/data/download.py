"""Downloads through pooch: verified against the pinned SHA-256, never left half-written.

pooch streams into a temporary file beside the target and moves it into place only
once its hash matches, so the cache never holds a partial or unverified file under the
real name (a mismatch, a dropped connection or Ctrl-C deletes the temporary file). What
arrived is looked at first, so that a mismatch says what the server sent instead: a web
page, a Git LFS pointer, an empty file, or a file of another size.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from dropcli.errors import DataError
from dropcli.data import sniff
from dropcli.data.catalog import RemoteFile

Progress = Callable[[str, int, "int | None"], None]  # (file name, bytes done, bytes total or None)

MIRROR_ENV = "DROPCLI_DATA_MIRROR"
CHUNK = 1 << 20
TIMEOUT = (15, 60)  # seconds to connect, and between two reads


class DownloadFailed(Exception):
    """Every address failed; ``reasons`` holds one short line per address tried."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def addresses(dataset: str, file: RemoteFile, urls: Sequence[str], mirror: str | None = None) -> list[str]:
    """Where to download ``file`` from: the mirror (``DROPCLI_DATA_MIRROR``) if set, else ``urls``.

    DataError if the mirror is not an http(s) address, before anything is downloaded or created.
    """
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        check_mirror(mirror)
        return [f"{mirror.rstrip('/')}/{dataset}/{file.name}"]
    return [base.rstrip("/") + "/" + file.name for base in urls]


def check_mirror(mirror: str) -> None:
    """DataError unless ``mirror`` is an http:// or https:// address with a host."""
    try:
        parts = urlsplit(mirror)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [ipv6 address
        ok = False
    if not ok or any(c.isspace() for c in mirror):
        raise DataError(f"{MIRROR_ENV}={mirror}: not an http(s) URL; expected an address such as "
                        f"https://example.org/datasets, which serves <dataset>/<file>")


class _PoochProgress:
    """The progress-bar object pooch drives (total, update, reset, close), as callbacks."""

    def __init__(self, report: Progress, name: str):
        self.report, self.name, self.total, self.done = report, name, 0, 0

    def update(self, n):
        self.done += n
        if self.total:
            self.done = min(self.done, self.total)
        self.report(self.name, self.done, self.total or None)

    def reset(self):
        self.done = 0

    def close(self):
        pass


class _Received:
    """pooch's downloader, noting what arrived (its first bytes and size) before pooch hashes it."""

    def __init__(self, downloader):
        self.downloader, self.head, self.size = downloader, b"", None

    def __call__(self, url, output_file, pooch_):
        self.downloader(url, output_file, pooch_)
        self.head, self.size = sniff.read_head(output_file), os.path.getsize(output_file)

    def mismatch(self, file: RemoteFile) -> str:
        """Why what arrived is not ``file``, in a few words."""
        if self.size is not None and (what := sniff.describe(self.head, self.size)):
            return f"sent {what}"
        if self.size is not None and self.size != file.size:
            return f"sent {self.size:,} bytes, not the {file.size:,} of the published file"
        return f"the file's SHA-256 is not the pinned {file.sha256[:12]}..."


@contextlib.contextmanager
def _quiet(logger: logging.Logger):
    level = logger.level
    logger.setLevel(logging.WARNING)  # pooch announces every download on stderr
    try:
        yield
    finally:
        logger.setLevel(level)


def download(file: RemoteFile, urls: Sequence[str], folder: Path, progress: Progress | None = None) -> Path:
    """Download ``file`` into ``folder`` from the first address that serves the right bytes.

    Raises ``DownloadFailed`` when none did (OSError if ``folder`` cannot be written).
    """
    import pooch
    import requests
    from dropcli.version import __version__

    reasons = []
    for url in urls:
        bar = _PoochProgress(progress, file.name) if progress else False
        downloader = _Received(pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK, timeout=TIMEOUT,
                                                    headers={"User-Agent": f"dropcli/{__version__}"}))
        try:
            with _quiet(pooch.get_logger()):
                return Path(pooch.retrieve(url, known_hash=f"sha256:{file.sha256}", fname=file.name,
                                           path=folder, downloader=downloader))
        except requests.RequestException as e:  # first: requests' errors are ValueErrors and OSErrors too
            reasons.append(f"{url}: {_why(e)}")
        except ValueError as e:
            if "hash" not in str(e):
                raise
            reasons.append(f"{url}: {downloader.mismatch(file)}, so it was deleted")
    raise DownloadFailed(reasons)


def _why(error) -> str:
    """A requests exception as a few words."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason or ''}".strip()
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    if isinstance(error, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "the transfer broke off before the end"
    if isinstance(error, requests.ConnectionError):
        text = str(error)
        if "refused" in text.lower():
            return "connection refused"
        if "resolve" in text.lower() or "name or service" in text.lower():
            return "the host name does not resolve (offline?)"
        return "cannot connect (offline?)"
    return f"{type(error).__name__}"
