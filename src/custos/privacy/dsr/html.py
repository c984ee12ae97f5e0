"""The access report (Art. 15) as one standalone HTML page: no scripts, no external assets, every
value escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import orjson

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.json{font-family:ui-monospace,monospace;font-size:.85em}
.note{color:#555}.empty{color:#777;font-style:italic}
"""

#: Section id → (title, what it answers), in page order.
SECTIONS: dict[str, tuple[str, str]] = {
    "attributes": (
        "The data we hold about you",
        "Every value, with the system it came from and when we received it.",
    ),
    "golden_record": (
        "Your profile as we use it",
        "One value per attribute, chosen from the above; where each came from and by which rule.",
    ),
    "interactions": ("Your interactions", "Calls, messages, posts, orders and events."),
    "consent": ("Your consent", "Your choices per purpose now, and every consent event."),
    "purposes": (
        "What we use your data for",
        "Each purpose, its lawful basis (GDPR Art. 6), the kinds of data it may use, and "
        "whether it may use yours now.",
    ),
    "recipients": (
        "Who has read your data",
        "The systems, API keys and users that read it, for which purposes, how often and when.",
    ),
    "retention": ("How long we keep it", ""),
    "sources": ("Where your data came from", ""),
    "merge_history": (
        "How your records were put together",
        "Records from different systems are joined into one profile; each join and each "
        "decision by a person is kept so it can be explained and undone.",
    ),
    "restriction": ("Restriction of processing", ""),
    "quarantine": ("Rows we could not read", "Rows kept aside with the reason."),
    "requests": ("Your requests", ""),
    "records": ("Your rows exactly as we received them", ""),
}


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<td></td>"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return f"<td>{escape(', '.join(str(v) for v in value))}</td>"
    if isinstance(value, dict | list):
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return f'<td class="json">{escape(text)}</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    return f"<td>{escape(str(value))}</td>"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of ``rows`` (dicts), with ``columns`` (default: the keys of the first)."""
    if not rows:
        return '<p class="empty">none</p>'
    names = list(columns or rows[0])
    head = "".join(f"<th>{escape(n.replace('_', ' '))}</th>" for n in names)
    body = "".join("<tr>" + "".join(_cell(r.get(n)) for n in names) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(name: str, content: str) -> str:
    title, note = SECTIONS[name]
    intro = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section id="{name}"><h2>{escape(title)}</h2>{intro}{content}</section>'


def _body(name: str, report: dict[str, Any]) -> str:
    value: Any = report[name]
    if name == "consent":
        states = [{"purpose": p, **s} for p, s in value["states"].items()]
        return (
            "<h3>Now</h3>"
            + table(states, ["purpose", "status", "explicit", "since", "basis", "allowed"])
            + "<h3>Every consent event</h3>"
            + table(value["ledger"])
        )
    if name == "retention":
        return f"<p>{escape(value['policy'])}</p>" + table(
            [{"held since": value["held_since"], "last received": value["last_received"]}]
        )
    if name == "merge_history":
        merged = ", ".join(value["merged_ids"]) or "none"
        return (
            f"<p>Earlier profile ids that now lead here: {escape(merged)}</p>"
            + "<h3>Events</h3>"
            + table(value["events"])
            + "<h3>Links between your records</h3>"
            + table(value["links"])
            + "<h3>Decisions by people</h3>"
            + table(value["decisions"])
        )
    if name == "restriction":
        if value is None:
            return "<p>Processing of your data is not restricted.</p>"
        return table([value])
    if name == "records":
        columns = ["kind", "source", "record_id", "file", "line", "as_received"]
        return table(value, [*columns, "earlier_versions"])
    if isinstance(value, list):
        return table(value)
    return table([value]) if isinstance(value, dict) else f"<p>{escape(str(value))}</p>"


def render(report: dict[str, Any]) -> str:
    """The access report as a standalone HTML page."""
    subject = report["subject"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Your data — {escape(subject['profile_id'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>What we hold about you and what we do with it</h1>",
        f"<p>Answer to request {escape(report['request'])} (GDPR Art. 15), made "
        f"{escape(report['generated_at'][:19].replace('T', ' '))} UTC. Profile "
        f"{escape(subject['profile_id'])}, created {escape(subject['created_at'][:10])}.</p>",
    ]
    for name in SECTIONS:
        if name in report:
            parts.append(_section(name, _body(name, report)))
    parts.append("</body></html>")
    return "\n".join(parts)
