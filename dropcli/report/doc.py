"""The document a report is built as, and its two renderings.

A report is a list of blocks (headings, paragraphs, tables, images, bullet lists) whose
links and images point at absolute paths; ``to_markdown`` and ``to_html`` render it with
every link made relative to the folder of the file written, so the folder can be moved
or opened from disk. A link to another report names both of its renderings (``target``
the Markdown, ``html`` the HTML page), so each rendering links its own kind. The HTML is
self-contained: inline CSS, no scripts, no network.
"""

from __future__ import annotations

import html
import os
from collections import namedtuple
from pathlib import Path
from urllib.parse import quote


# Blocks of a report. Link and Image targets are absolute paths, made relative on rendering;
# a table cell or paragraph part is a str, a Link, or a list of those. A Link's ``html`` is
# where the HTML rendering points instead (a report's HTML page), if anywhere else.
Link = namedtuple("Link", "text target html", defaults=(None,))
Heading = namedtuple("Heading", "level text")
Para = namedtuple("Para", "parts")
Table = namedtuple("Table", "header rows")
Image = namedtuple("Image", "target alt")
Bullets = namedtuple("Bullets", "items")


def _href(target: Path, base: Path) -> str:
    return quote(Path(os.path.relpath(target, base)).as_posix())


def _parts(cell) -> list:
    return list(cell) if isinstance(cell, (list, tuple)) and not isinstance(cell, Link) else [cell]


def _md_inline(cell, base: Path, table=False) -> str:
    out = "".join(f"[{p.text}]({_href(p.target, base)})" if isinstance(p, Link) else str(p) for p in _parts(cell))
    return out.replace("|", "\\|").replace("\n", " ") if table else out


def to_markdown(blocks: list, base: Path) -> str:
    """Markdown (GitHub flavour) of ``blocks``, links relative to ``base``."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(_md_inline(b.parts, base))
        elif isinstance(b, Image):
            out.append(f"![{b.alt}]({_href(b.target, base)})")
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {_md_inline(i, base)}" for i in b.items))
        elif isinstance(b, Table):
            lines = [b.header, ["---"] * len(b.header)] + [[_md_inline(c, base, True) for c in r] for r in b.rows]
            out.append("\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines))
    return "\n\n".join(out) + "\n"


def _html_inline(cell, base: Path) -> str:
    return "".join(
        f'<a href="{html.escape(_href(p.html or p.target, base))}">{html.escape(p.text)}</a>' if isinstance(p, Link)
        else html.escape(str(p)) for p in _parts(cell)
    )


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3}td{text-align:right;white-space:nowrap}td:first-child{text-align:left}
td:last-child{white-space:normal;min-width:6em}.table{overflow-x:auto}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}figcaption{color:#666;font-size:85%}
h1,h2,h3{border-bottom:1px solid #eee}"""


def to_html(blocks: list, base: Path, title: str) -> str:
    """A self-contained HTML page of ``blocks``: inline CSS, relative links, no scripts."""
    out = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_html_inline(b.parts, base)}</p>")
        elif isinstance(b, Image):
            src = html.escape(_href(b.target, base))
            out.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(b.alt)}" loading="lazy"></a>'
                       f"<figcaption>{html.escape(b.alt)}</figcaption></figure>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(i, base)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c, base)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
    return "\n".join(out) + "\n</body></html>\n"
