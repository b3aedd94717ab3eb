"""Profile: what :class:`~deepseek.data.DataProfiler` found, as a mapping, JSON, a self-contained HTML report and
cleaner rules."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

from .._core.errors import invalid


@dataclasses.dataclass
class Profile:
    """The result of :meth:`DataProfiler.profile`: ``to_dict``, ``save_json``, ``save_html``, ``suggested_rules``."""

    rows: int
    columns: dict[str, dict[str, Any]]
    duplicate_rows: int | None
    minimal: bool
    z: float
    anomalies: dict[str, Any] | None = None
    label_issues: dict[str, Any] | None = None
    flagged: list[int] = dataclasses.field(default_factory=list)
    source: str | None = None  # the file profiled, never overwritten by save_json / save_html

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "duplicate_rows": self.duplicate_rows, "minimal": self.minimal,
                "outlier_z": self.z, "columns": self.columns, "anomalous_rows": self.anomalies,
                "label_issues": self.label_issues}

    def flagged_rows(self) -> list[int]:
        """Positions (0-based, in the data's order) of every row the isolation forest or cleanlab flagged."""
        return list(self.flagged)

    def save_json(self, path: str | Path) -> Path:
        """:meth:`to_dict` as JSON in ``path``, written atomically."""
        import json

        from .._core.atomic import check_output, write_text

        check_output(path, argument="path", inputs=[self.source] if self.source else [])
        return write_text(path, json.dumps(self.to_dict(), indent=2, default=str))

    def suggested_rules(self, column: str | None = None) -> dict[str, Any]:
        """Cleaner rules from what the profile saw in text ``column`` (the first text column by default): the
        length bounds at the robust-z outlier limits, the dominant language, exact dedup when rows repeat."""
        texts = [n for n, s in self.columns.items() if s["text"]]
        name = column or (texts[0] if texts else None)
        if name is None or name not in self.columns or "length" not in self.columns[name]:
            raise invalid("column", column, f"a text column of the profile ({texts})")
        s = self.columns[name]
        length = s["length"]
        spread = 1.4826 * length["mad"] * self.z
        rules: dict[str, Any] = {"version": 1, "length": {"min": max(0, math.floor(length["median"] - spread)),
                                                          "max": math.ceil(length["median"] + spread),
                                                          "unit": "chars"}}
        if s.get("languages"):
            top, share = next(iter(s["languages"].items()))
            if share >= 0.5:
                rules["language"] = {"languages": [top], "min_score": 0.5}
        if self.duplicate_rows:
            rules["dedup"] = {"exact": True}
        return rules

    def save_html(self, path: str | Path) -> Path:
        """:meth:`html` in ``path``, written atomically."""
        from .._core.atomic import check_output, write_text

        check_output(path, argument="path", inputs=[self.source] if self.source else [])
        return write_text(path, self.html())

    def html(self) -> str:
        """A self-contained HTML report (charts embedded as PNG)."""
        import base64
        import html
        import io

        parts = [f"<h1>Data profile</h1><p>{self.rows:,} rows, {len(self.columns)} columns"
                 + (f", {self.duplicate_rows:,} duplicate rows" if self.duplicate_rows is not None else "") + "</p>"]
        for name, s in self.columns.items():
            parts.append(f"<h2>{html.escape(name)}</h2><table>")
            rows = [("kinds", s["kinds"]), ("missing", f"{s['missing']:,} ({100 * s['missing_share']:.2f} %)"),
                    ("distinct", f"{s['distinct']:,}" + ("" if s["distinct_exact"] else " (estimate)")),
                    ("outliers", s.get("outliers")), ("top values", s["top"]), ("languages", s.get("languages"))]
            summary = s.get("length") or s.get("numeric")
            if summary:
                rows.append(("text length" if s["text"] else "values",
                             {k: round(v, 4) for k, v in summary.items() if k != "histogram"}))
            for key, value in rows:
                if value is not None:
                    parts.append(f"<tr><th>{key}</th><td>{html.escape(str(value))}</td></tr>")
            parts.append("</table>")
            if summary and "histogram" in summary:
                import matplotlib

                matplotlib.use("Agg")
                import matplotlib.pyplot as plt

                fig, ax = plt.subplots(figsize=(5, 2.2))
                edges, counts = summary["histogram"]["edges"], summary["histogram"]["counts"]
                ax.bar(edges[:-1], counts, width=[b - a for a, b in pairwise(edges)], align="edge")
                ax.set_xlabel("length (characters)" if s["text"] else name)
                fig.tight_layout()
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=80)
                plt.close(fig)
                parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
                             f'{base64.b64encode(buffer.getvalue()).decode()}">')
        for title, found, columns in (("Anomalous rows", self.anomalies, ("row", "score")),
                                      ("Label issues", self.label_issues,
                                       ("row", "given", "suggested", "self_confidence"))):
            if found:
                parts.append(f"<h2>{title}</h2><p>{found['count']:,} rows ({100 * found['share']:.2f} %) — "
                             f"{html.escape(found['method'])}</p><table><tr>"
                             + "".join(f"<th>{c}</th>" for c in columns) + "</tr>")
                for item in found["rows"][:20]:
                    parts.append("<tr>" + "".join(f"<td>{html.escape(str(item[c]))}</td>" for c in columns) + "</tr>")
                parts.append("</table>")
        return ("<!doctype html><html><head><meta charset='utf-8'><title>Data profile</title><style>"
                "body{font-family:sans-serif;max-width:60em;margin:auto}th{text-align:left;padding-right:1em}"
                "</style></head><body>" + "".join(parts) + "</body></html>")
