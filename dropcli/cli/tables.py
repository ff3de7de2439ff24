"""Tables that fit the terminal without cutting a cell (``dropcli runs``, ``sweep``, ``eval``)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from dropcli.cli.app import out


def print_table(heading: str, header: list[str], rows: list[list], *, same=(), droppable=(), right=()) -> None:
    """Print ``heading`` and a table of ``rows`` (str or Text cells) whose cells are never
    cut: a run id must stay whole to be copied into `dropcli eval`.

    Columns named in ``same`` whose cells are equal in every row are left out and named
    in the heading instead ("all: variant inverted"). If the table is wider than the
    terminal, its headers wrap between words, then the columns named in ``droppable`` are
    left out, in that order; a table still too wide is printed whole (the terminal wraps
    its lines) rather than cut. ``right``: the columns aligned right (numbers).
    """
    rows = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
    shown = list(range(len(header)))
    notes = []
    for i, name in enumerate(header):
        if name in same and rows and len({r[i].plain for r in rows}) == 1:
            shown.remove(i)
            notes.append(f"{name} {rows[0][i].plain}")
    if notes:
        heading += f"; all: {', '.join(notes)}"
    table = _table(header, rows, shown, wrap_headers=False, right=right)
    if _width(table) > out.width:
        table = _table(header, rows, shown, wrap_headers=True, right=right)
    for name in droppable:
        if _width(table) <= out.width:
            break
        if name in header and header.index(name) in shown:
            shown.remove(header.index(name))
            table = _table(header, rows, shown, wrap_headers=True, right=right)
    out.print(heading, markup=False, highlight=False)
    width = _width(table)
    if width <= out.width:
        out.print(table)
    else:  # nothing more to leave out: print it whole (the terminal wraps its lines)
        Console(file=out.file, width=width, force_terminal=out.is_terminal, color_system=out.color_system).print(table)


def _table(header, rows, shown, *, wrap_headers, right=()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for i in shown:
        head = max(map(len, header[i].split())) if wrap_headers else len(header[i])
        table.add_column(header[i], width=max([head] + [r[i].cell_len for r in rows]),
                         justify="right" if header[i] in right else "left")
    for r in rows:
        table.add_row(*[r[i] for i in shown])
    return table


def _width(table: Table) -> int:
    return Measurement.get(out, out.options.update_width(10_000), table).maximum


def status_text(status) -> Text:
    style = {"completed": "green", "running": "yellow", "pending": "yellow"}.get(status, "red")
    return Text(str(status), style=style)
