"""Files seen in the wild in place of a dataset file, named in one place for every reader.

    an HTML page       a saved error or login page under ``train-images-idx3-ubyte.gz``
                       (plain, or gzipped as the server sent it); an XML error (Amazon S3's)
    a Git LFS pointer  what a clone without ``git lfs`` holds: ``version https://git-lfs...``,
                       ``oid sha256:<hex>``, ``size <bytes>``, under the real file's name
    an empty file      an interrupted download or copy
    a truncated file   a gzip, tar, zip (npz) or pickle that ends before its end marker

Each reader calls ``check`` before it reads a file, and ``truncated`` when its stream ends
early; ``Origin`` (from whoever located the file) says how the message names the file, the
setting to blame and how to get the real one. ``describe`` names a file from its first bytes
alone, for a download that did not match its checksum.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from dropcli.errors import DataError

HEAD = 4096  # enough for any pointer (the LFS spec caps them at 1024 bytes) and most pages' <title>
GZIP_MAGIC = b"\x1f\x8b"
LFS_VERSION = b"version https://git-lfs.github.com/spec/v1"
_LFS = re.compile(rb"\Aversion https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?oid sha256:([0-9a-f]{64})\n"
                  rb"(?:.*\n)*?size (\d+)\n")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<!--", b"<head", b"<body")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_ENDS = {  # a container that was cut short, and the end it never reached
    "gzip": ("a gzip stream", "its end-of-stream marker"),
    "tar": ("a tar archive", "the end of its last member"),
    "zip": ("a zip archive (what numpy.savez writes)", "its central directory"),
    "pickle": ("a pickle", "its STOP opcode"),
}


@dataclass(frozen=True)
class Origin:
    """Where a dataset file came from, as a message about a bad one says it.

    ``label`` names the file (``{path}`` is replaced); ``key`` is the setting to blame;
    ``again`` is how to get a good copy, ``alternative`` another way out.
    """

    label: str = "{path}"
    key: str | None = None
    again: str = "download or copy the file again"
    alternative: str | None = None

    def error(self, path, finding: str, instead: str | None = None) -> DataError:
        """``<label>: is <finding>; <instead or again>[, or <alternative>]``, one line."""
        steps = ", or ".join(s for s in (instead or self.again, self.alternative) if s)
        return DataError(f"{self.label.format(path=path)}: is {finding}; {steps}", key=self.key)


DATA_PATH = Origin("data.path {path}", "data.path", alternative="point data.path at the real file")


def read_head(path, n: int = HEAD) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def describe(head: bytes, size: int) -> str | None:
    """What a file of ``size`` bytes starting with ``head`` is, if it is one of the files
    seen in the wild in place of a dataset file; None if it may be a dataset file."""
    if size == 0:
        return "an empty file (0 bytes: an interrupted download or copy)"
    if pointer := lfs_pointer(head):
        oid, real = pointer
        return (f"a Git LFS pointer file ({size:,} bytes of text that stand for the real file of "
                f"{real:,} bytes, sha256 {oid[:12]}...)")
    if head.startswith(GZIP_MAGIC):  # a page the server gzipped, saved without unzipping it
        inner = _gunzip_head(head)
        if inner and (what := describe(inner, len(inner))) and what.startswith(("an HTML", "an XML")):
            return f"a gzipped {what.removeprefix('an ')}"
        return None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    is_xml = text.startswith(b"<?xml")
    if text.startswith(_HTML_STARTS) or (is_xml and b"<html" in text):
        title = _TITLE.search(head)
        titled = f' titled "{_short(title.group(1))}"' if title and title.group(1).strip() else ""
        return f"an HTML page{titled} (a web page, such as an error or login page, in place of the dataset file)"
    if is_xml:
        return "an XML document (a server's error response, in place of the dataset file)"
    return None


def lfs_pointer(head: bytes) -> tuple[str, int] | None:
    """(sha256, size) of the real file, if ``head`` is a Git LFS pointer file."""
    match = _LFS.match(head) if head.startswith(LFS_VERSION) and len(head) < 1024 else None
    return (match.group(1).decode(), int(match.group(2))) if match else None


def check(path, expected: str, origin: Origin = Origin()) -> None:
    """DataError if the file at ``path`` is one of the files seen in the wild instead of
    ``expected`` (``"an IDX file"``); OSError if it cannot be read."""
    path = Path(path)
    head, size = read_head(path), path.stat().st_size
    if what := describe(head, size):
        pull = f"run `git lfs pull` in {_repository(path)} to fetch it" if lfs_pointer(head) else None
        raise origin.error(path, f"{what}, not {expected}", pull)


def truncated(path, size: int, container: str, origin: Origin = Origin()) -> DataError:
    """The error for a file of ``size`` bytes whose ``container`` ("gzip", "tar", "zip",
    "pickle") ended before its end marker."""
    what, end = _ENDS[container]
    return origin.error(path, f"truncated: {what} that ends after {size:,} bytes, before {end} "
                              f"(an interrupted download or copy)")


def _gunzip_head(head: bytes) -> bytes | None:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD)
    except zlib.error:
        return None


def _short(title: bytes, most: int = 60) -> str:
    text = " ".join(title.decode("utf-8", "replace").split())
    return text if len(text) <= most else text[: most - 3] + "..."


def _repository(path: Path) -> str:
    """The Git working tree that holds ``path``, for `git lfs pull`; else a description."""
    for folder in Path(os.path.abspath(path)).parents:
        if (folder / ".git").exists():
            return str(folder)
    return "the Git repository it came from"
