"""Result tables, written three ways from one list of rows: a rich table for the terminal, CSV
and Markdown for the results folder. `compare`, `probe-gradients` and `runs` share these.

    rnnlab compare lstm gru        # results.csv, results.md and the table at the end
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from .rundir import write_atomic

__all__ = ["write_csv", "print_table", "markdown_table"]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """One row per dict, the given columns in order; None is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
    write_atomic(path, buffer.getvalue().encode())


def print_table(console: Console, title: str, heads: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> None:
    """Short headers and no side borders, so the table fits an 80-column terminal; the first
    `left` columns are text (left-aligned), the others figures."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, head in enumerate(heads):
        table.add_column(head, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def markdown_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table."""
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
