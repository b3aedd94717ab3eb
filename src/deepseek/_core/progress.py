"""One progress-bar style for everything that takes more than a few seconds."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (stdout stays clean for ``--json`` output)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=transient,
    )
