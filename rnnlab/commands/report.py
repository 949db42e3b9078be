"""`rnnlab report`: an HTML page for one run, or one page for several, that opens with no network.

    rnnlab report runs/<run>                          # writes runs/<run>/report.html
    rnnlab report runs/<a> runs/<b> --out both.html   # one page, the curves overlaid
    rnnlab report runs/<time>-compare-lstm-gru        # a comparison stands for its runs

The page (rnnlab/report_html.py) holds the resolved config, the training and validation curves
(hover for the values), the final table, the checkpoints and the status, and links to the run's
inspect pages (`rnnlab inspect RUN --html`).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..report_html import run_dirs, write_report
from ..rundir import resolve_run

__all__ = ["report"]


def report(runs: list[Path], *, out: Path | None, console: Console) -> Path:
    """The command: resolve the runs, write the page, print where it is."""
    found = run_dirs([resolve_run(r) for r in runs])
    page = write_report(found, out)
    console.print(f"wrote {escape(str(page))} ({len(found)} run{'s' if len(found) != 1 else ''}); open it in a browser: "
                  f"file://{escape(str(page.resolve()))}", soft_wrap=True, highlight=False)  # fmt: skip
    return page
