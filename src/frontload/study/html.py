"""The building blocks of fl's HTML report: escaping, tables, inline SVG plots, the page shell.

Everything a reader needs is inside the page: CSS in a <style> block, plots as inline SVG, no
script and no link to the network, so it opens from a mail attachment or an air-gapped machine.
The sections themselves are in `study.html_report` (data stages) and `study.html_results`.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from datetime import UTC, datetime

from frontload.workspace import Workspace

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1d232a; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccd; }
h3 { margin-top: 1.4em; } .meta, .note { color: #5a6470; } .note { font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5d9e0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } tr:nth-child(even) td { background: #f8f9fb; }
td.reproduced { color: #176b2c; font-weight: 600; } td.reversed { color: #a3261b; font-weight: 600; }
td.inconclusive, td.not-run { color: #7a6a00; }
nav a { margin-right: 1em; } figure { margin: 0.8em 0; } svg { max-width: 100%; height: auto; }
"""


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: list[str], rows: list[list[object]], classes: list[str] | None = None) -> str:
    """An HTML table; `classes` (one per row) mark a cell class on the row's last cell."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        marked = classes[index] if classes else ""
        cells = [
            f'<td class="{escape(marked)}">{escape(v)}</td>'
            if marked and i == len(row) - 1
            else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def arrow_table(data, max_rows: int = 200) -> str:
    """A pyarrow table as HTML (at most `max_rows` rows)."""
    rows = [list(row.values()) for row in data.slice(0, max_rows).to_pylist()]
    return table(list(data.column_names), rows)


def svg(fig) -> str:
    """A matplotlib figure as inline SVG: text stays text (searchable), no external references."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fl"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib numbers ids per figure (figure_1, axes_1, ...): prefix them with a hash of the
    # figure so several figures on one page never share an id or a clip-path reference
    prefix = "f" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'(\bid="|url\(#|href="#)', lambda m: m.group(1) + prefix, text)
    return "<figure>" + text + "</figure>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{body}</section>'


def page(workspace: Workspace, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: header, a table of contents, the sections."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        fl_version = version("frontload")
    except PackageNotFoundError:
        fl_version = "unknown"
    created = datetime.now(UTC).isoformat(timespec="seconds")
    nav = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t, _ in sections)
    body = "".join(section(*parts) for parts in sections)
    if not sections:
        body = "<p>Nothing to report yet: run <code>fl run PIPELINE.yaml</code> first.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>frontload report: {escape(workspace.root.name)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>frontload report: {escape(workspace.root.name)}</h1>"
        f'<p class="meta">workspace {escape(workspace.root)} · fl {escape(fl_version)} · '
        f"written {escape(created)}</p><nav>{nav}</nav>{body}</body></html>\n"
    )
