"""A plugin for rnnlab: `--user-dir examples/custom_cell` imports this package (docs/custom_cell.md)."""

from . import mycell  # noqa: F401  (registers the model "mycell")
