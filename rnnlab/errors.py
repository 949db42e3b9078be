"""User-facing errors: anything a user can fix by changing what they typed.

`rnnlab train bad.yaml` -> UserError -> the CLI prints the message and exits 2, no traceback.
"""

from __future__ import annotations

__all__ = ["UserError", "ConfigError"]


class UserError(Exception):
    """A mistake in the user's input; the message names the problem and the fix."""

    exit_code = 2

    def __init__(self, *args: object, exit_code: int | None = None):
        super().__init__(*args)
        if exit_code is not None:  # e.g. 1 for a fault, 128 + N after signal N
            self.exit_code = exit_code


class ConfigError(UserError):
    """Every problem found in a config at once, one line per problem; the message lists the
    first `SHOWN` and counts the rest (`problems` keeps them all)."""

    SHOWN = 20

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        head = f"invalid config{f' {source}' if source else ''}"
        noun = "problem" if len(problems) == 1 else "problems"
        more = len(problems) - self.SHOWN
        lines = [f"  - {p}" for p in problems[: self.SHOWN]] + ([f"  ... and {more:,} more"] if more > 0 else [])
        listed = f", the first {self.SHOWN} listed" if more > 0 else ""
        super().__init__(f"{head} ({len(problems):,} {noun}{listed}):\n" + "\n".join(lines))
