"""The reviewer's worklist: the calls in the order they are worked through (fail, then review, then
pass; lowest score first), each flagged call's previous and next, and the rows the index pages
through in the browser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

VERDICT_RANK = {"fail": 0, "review": 1, "pass": 2}


def worklist_order(rows: list[dict]) -> list[dict]:
    """Summary rows worst first: verdict, then score (lowest first), then call id."""
    return sorted(rows, key=lambda r: (VERDICT_RANK.get(r["verdict"], 1), r["score"], r["call_id"]))


def neighbours(flagged: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """Each flagged call's previous and next flagged call, in worklist order."""
    return {call: (flagged[i - 1] if i else None, flagged[i + 1] if i + 1 < len(flagged) else None)
            for i, call in enumerate(flagged)}


@dataclass(frozen=True)
class CallSearch:
    """What the index knows of a call beyond its summary row: its findings' keys and its text."""

    findings: tuple[str, ...] = ()
    text: str = ""


def index_row(row: dict, href: str | None, problem: str, search: CallSearch, decided: set[str],
              shown: Callable[[str], str]) -> dict:
    """One call as the index's script reads it (JSON in the page; the browser renders a page at a
    time, so 10,000 calls load as fast as a few)."""
    verdict = row["verdict"] if row["verdict"] in VERDICT_RANK else "review"
    return {"id": shown(row["call_id"]), "href": href, "problem": shown(problem) if not href else "",
            "agent": shown(row["agent_id"] or "未知"), "verdict": verdict, "score": row["score"],
            "rules": row["failed_rules"], "source": row["transcript_source"],
            "findings": list(search.findings), "stored": [k for k in search.findings if k in decided],
            "text": search.text}
