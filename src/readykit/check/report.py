"""The report: a terminal summary (rich), JSON, Markdown, and a self-contained HTML page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from readykit.check.runner import Report

_ICONS = {"blocker": "BLOCKER", "warning": "warning", "info": "info"}
_STYLES = {"blocker": "bold red", "warning": "yellow", "info": "dim"}
_VERDICT_STYLES = {
    "ready": "bold green",
    "warnings": "bold yellow",
    "not-ready": "bold red",
    "inconclusive": "bold magenta",
}
TEMPLATE = Path(__file__).with_name("report.html.j2")


def to_json(report: Report) -> str:
    """The JSON document, indented."""
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


def _score(doc: dict[str, Any]) -> str:
    return "n/a" if doc["score"] is None else f"{doc['score']}/100"


def _limited_line(doc: dict[str, Any]) -> str | None:
    """One line when the target rate-limited the checker: how much, and what it left unjudged."""
    limited = doc.get("rate_limited")
    if not limited:
        return None
    what = ", ".join(limited["not_judged"]) or "nothing"
    where = "; discovery stopped at a 429" if limited["discovery"] else ""
    return f"{limited['summary']}{where}; not judged: {what}"


_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_PUNCTUATION = re.compile(r"[\\`*_\[\]|~]")


def _md_text(text: Any) -> str:
    """Text for outside a code fence: HTML-significant characters as entities, Markdown's
    emphasis, code, link and table syntax backslash-escaped, newlines as `<br>`; what a target
    said (a title quoting its body) renders as the text it is, never as markup or a link."""
    escaped = _MD_PUNCTUATION.sub(lambda m: "\\" + m.group(0), str(text))
    for char, entity in _MD_ESCAPES.items():
        escaped = escaped.replace(char, entity)
    return escaped.replace("\n", "<br>")


def _fenced(*parts: str) -> list[str]:
    """`parts` as one code block whose fence is longer than any backtick run inside (how
    CommonMark keeps a fence from being closed early): the text is shown as it is."""
    text = "\n".join(parts)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", text, fence]


def to_markdown(report: Report) -> str:
    """A Markdown report: verdict, the category table, then each finding with its evidence."""
    doc = report.as_dict()
    lines = [
        f"# readykit check: {_md_text(doc['target'])}",
        "",
        f"**Verdict: {doc['verdict']}** · score {_score(doc)} · "
        f"{doc['started_at']} · {doc['duration_s']} s · {doc['tool']}",
        "",
        "| category | score | blockers | warnings |",
        "| --- | ---: | ---: | ---: |",
    ]
    limited = _limited_line(doc)
    if limited is not None:
        lines[4:4] = [f"**{_md_text(limited)}**", ""]
    for name, c in doc["categories"].items():
        shown = "n/a" if c["score"] is None else c["score"]
        lines.append(f"| {name} | {shown} | {c['blockers']} | {c['warnings']} |")
    lines += ["", "## Findings", ""]
    for f in doc["findings"]:
        ev = f["evidence"]
        lines += [
            f"### [{f['severity']}] {_md_text(f['title'])}",
            "",
            f"- check: `{f['check']}` ({f['category']})",
        ]
        if f["remediation"]:
            lines.append(f"- fix: {_md_text(f['remediation'])}")
        shown = [ev["request"]]
        if ev["status"] is not None:
            shown.append(f"→ {ev['status']}")
        if ev["response"]:
            shown.append(ev["response"])
        lines += ["", *_fenced(*shown), ""]
    if doc["ignored"]:
        lines += ["## Ignored by the config", ""]
        lines += [f"- `{f['check']}`: {_md_text(f['title'])}" for f in doc["ignored"]]
        lines.append("")
    return "\n".join(lines)


def to_html(report: Report) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external resources)."""
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(TEMPLATE.read_text())
    doc = report.as_dict()
    return template.render(doc=doc, limited=_limited_line(doc))


def print_summary(report: Report, *, file: Any = None) -> None:
    """The terminal summary: one table of categories, then blockers and warnings."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, highlight=False, soft_wrap=False)
    doc = report.as_dict()
    table = Table(title=f"readykit check {doc['target']}", title_justify="left")
    for column, justify in (
        ("category", "left"),
        ("score", "right"),
        ("blockers", "right"),
        ("warnings", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, c in doc["categories"].items():
        table.add_row(
            name,
            "n/a" if c["score"] is None else str(c["score"]),
            str(c["blockers"]) if c["blockers"] else "",
            str(c["warnings"]) if c["warnings"] else "",
        )
    console.print(table)
    for f in doc["findings"]:
        if f["severity"] == "info":
            continue
        label = (_ICONS[f["severity"]], _STYLES[f["severity"]])
        console.print(Text.assemble(label, f" {f['check']}: {f['title']}"))
        if f["remediation"]:
            console.print(Text(f"    fix: {f['remediation']}"))
    limited = _limited_line(doc)
    if limited is not None:
        console.print(Text(limited, style="magenta"))
    console.print(
        Text.assemble(
            "verdict: ",
            (doc["verdict"], _VERDICT_STYLES[doc["verdict"]]),
            f"  score {_score(doc)}  ({doc['duration_s']} s, endpoints from "
            f"{doc['discovery']['source']})",
        )
    )
