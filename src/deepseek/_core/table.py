"""A rich Table that also reads well through plain ``print()`` and ``str()``."""

from __future__ import annotations

import io
import shutil

from rich.console import Console
from rich.table import Table as _RichTable


class Table(_RichTable):
    """``rich.table.Table``: ``console.print(t)`` renders it with rich; ``print(t)`` prints it as plain text
    (box-drawn, no colour codes) sized to the terminal, instead of ``<rich.table.Table object at 0x...>``."""

    def __str__(self) -> str:
        width = max(100, shutil.get_terminal_size((120, 24)).columns)
        console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, soft_wrap=False)
        console.print(self)
        return console.file.getvalue().rstrip("\n")
