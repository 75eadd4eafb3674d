"""Documents as blocks (headings, paragraphs, tables, figures), rendered as Markdown and as HTML.

The report of :mod:`genrekit.evaluation.report` and the cross-dataset report of
:mod:`genrekit.evaluation.crossdataset` are built as lists of these blocks; this module knows
nothing of their content.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field


@dataclass
class Table:
    """A table block: a header row, body rows of strings, and CSS classes per row."""

    header: list[str]
    rows: list[list[str]]
    row_classes: list[str] = field(default_factory=list)
    caption: str = ""


@dataclass
class Figure:
    """A figure block: PNG bytes saved as ``figures/<name>.png``."""

    name: str
    png: bytes
    caption: str


@dataclass
class Heading:
    """A section heading (level 2 or 3)."""

    text: str
    level: int = 2


@dataclass
class Paragraph:
    """A paragraph of plain text; ``warning`` ones are highlighted."""

    text: str
    warning: bool = False


def png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pyplot():
    """Return matplotlib.pyplot on the Agg backend with the house style (small font, no top/right spines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list) -> str:
    """Render `blocks` as Markdown; figures link to ``figures/<name>.png``."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [("> **Warning:** " if block.warning else "") + block.text, ""]
        elif isinstance(block, Figure):
            lines += [f"![{block.caption}](figures/{block.name}.png)", "", f"*{block.caption}*", ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(map(_md_cell, block.header)) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            for row, css in zip(block.rows, block.row_classes or [""] * len(block.rows), strict=True):
                cells = [
                    f"**{_md_cell(cell)}**" if css == "optimistic" and cell else _md_cell(cell)
                    for cell in row
                ]
                lines.append("| " + " | ".join(cells) + " |")
            lines += (["", f"*{block.caption}*"] if block.caption else []) + [""]
    return "\n".join(lines)


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1080px;margin:2rem auto;
padding:0 1.5rem;color:#1f2328;line-height:1.5;background:#fff}
h1{font-size:1.6rem;border-bottom:2px solid #e5e7eb;padding-bottom:.4rem}
h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.25rem}
h3{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.86rem;width:100%}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
tbody tr:nth-child(even){background:#fbfbfc}
tr.paper td{color:#57606a;font-style:italic}
tr.optimistic td{background:#fff4e5;color:#8a4b00;font-weight:600}
tr.avg td{font-weight:600;border-top:1px solid #d0d7de}
tr.wrong td{color:#b42318}
caption{caption-side:bottom;text-align:left;color:#57606a;font-size:.8rem;padding-top:.3rem}
figure{margin:1rem 0;text-align:center}
figure img{max-width:100%;height:auto}
figcaption{color:#57606a;font-size:.85rem}
p.warning{background:#fff4e5;border-left:4px solid #f59e0b;padding:.5rem .8rem}
"""


def to_html(blocks: list) -> str:
    """Render `blocks` as one self-contained HTML page (CSS inline, figures as base64 PNG)."""
    title = next((block.text for block in blocks if isinstance(block, Heading)), "genrekit report")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p{' class=warning' if block.warning else ''}>{html.escape(block.text)}</p>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
        elif isinstance(block, Table):
            parts.append("<table>")
            if block.caption:
                parts.append(f"<caption>{html.escape(block.caption)}</caption>")
            parts.append(
                "<thead><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
                + "</tr></thead><tbody>"
            )
            for row, css in zip(block.rows, block.row_classes or [""] * len(block.rows), strict=True):
                attr = f' class="{css}"' if css else ""
                parts.append(
                    f"<tr{attr}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                )
            parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)
