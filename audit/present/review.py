"""Reviewers' decisions on findings: confirm or dismiss, a reason, a note and the reviewer's name.

The report keeps decisions in the browser and exports them as a JSON file (`audit-review/1`);
`import_reviews` reads that file into the results database's `reviews` table, and `review_figures`
counts, per rule, the flagged findings reviewed and how often reviewers dismissed them: the rule's
precision as the field sees it.

A finding is one rule's failure (or unsure failure) on one call, identified across re-audits by the
call, the rule and the moment of its first piece of evidence (whole seconds, `-` when it has none).
The key hashes these with the recording's SHA-256, so the exported file names no call id in clear
(a masked report stays masked) and the same recording audited again with another config or model
gives its findings the same keys; a finding whose first evidence moves to another second is a new
finding, and a decision on the old one is counted as no longer matching.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audit.config import LabelsConfig
from audit.records import FLAGGED, finding_key, moment
from audit.present.store import ResultsDB

REVIEW_SCHEMA = "audit-review/1"
DECISIONS = ("confirm", "dismiss")
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 2000  # of a note, a reason or a name


class ReviewFileError(Exception):
    """A review file that cannot be imported; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Finding:
    key: str
    call_id: str
    rule_id: str
    moment: str


def record_findings(record: dict, call_id: str = "") -> list[Finding]:
    """The flagged findings of a call record, with their keys; `call_id` in clear where the record
    holds it masked."""
    sha, call_id = record["recording"]["sha256"], call_id or record["call_id"]
    return [Finding(finding_key(sha, call_id, r["rule_id"], moment(r["evidence"])),
                    call_id, r["rule_id"], moment(r["evidence"]))
            for r in record["results"] if r["status"] in FLAGGED]


def current_findings(db: ResultsDB) -> dict[str, Finding]:
    """Every flagged finding of the calls' current verdicts, by key."""
    found = {}
    for call_id, sha, rule_id, evidence in db.db.execute(
            "SELECT r.call_id, c.audio_sha256, r.rule_id, r.evidence FROM results r JOIN calls c USING (call_id)"
            f" WHERE r.status IN ({','.join('?' * len(FLAGGED))})", FLAGGED):
        where = moment(json.loads(evidence))
        key = finding_key(sha, call_id, rule_id, where)
        found[key] = Finding(key, call_id, rule_id, where)
    return found


def stored_reviews(db: ResultsDB) -> dict[str, dict]:
    """Every imported decision by finding key."""
    columns = ("decision", "reason", "note", "reviewer", "decided_at")
    return {key: dict(zip(columns, rest)) for key, *rest in db.db.execute(
        "SELECT finding_key, decision, reason, note, reviewer, decided_at FROM reviews")}


# --- the file the report exports ----------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    finding: str
    rule_id: str
    moment: str
    decision: str
    reason: str
    note: str
    reviewer: str
    decided_at: str


def read_review_file(path: Path, reasons: tuple[str, ...]) -> list[Decision]:
    """The decisions in an exported review file; `ReviewFileError` naming the file and the first
    problem (not JSON, another schema, a decision without a reviewer, a reason not in `reasons`)."""
    def bad(reason: str) -> ReviewFileError:
        return ReviewFileError(f"{path}: {reason}")

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise bad(f"larger than {MAX_FILE_BYTES // 2**20} MB: not a review file")
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise bad("file not found") from None
    except IsADirectoryError:
        raise bad("is a folder, not a review file") from None
    except UnicodeDecodeError as error:
        raise bad(f"not UTF-8 text (byte {error.start})") from None
    except ValueError as error:
        raise bad(f"not valid JSON ({error})") from None
    except OSError as error:
        raise bad(f"cannot be read ({error.strerror})") from None
    if not isinstance(document, dict) or document.get("schema") != REVIEW_SCHEMA:
        raise bad(f'not a review file: expected {{"schema": "{REVIEW_SCHEMA}", "decisions": [...]}} '
                  "as the report's 导出审核结果 writes it")
    items = document.get("decisions")
    if not isinstance(items, list):
        raise bad('"decisions" must be a list')
    return [_decision(item, f"decisions[{index}]", reasons, bad) for index, item in enumerate(items)]


def _decision(item, where: str, reasons: tuple[str, ...], bad) -> Decision:
    if not isinstance(item, dict):
        raise bad(f"{where} must be an object")
    values = {}
    for name in ("finding", "rule_id", "moment", "decision", "reason", "note", "reviewer", "decided_at"):
        value = item.get(name, "" if name == "note" else None)
        if not isinstance(value, str):
            raise bad(f"{where}.{name} must be a string, got {value!r}")
        if len(value) > MAX_TEXT_CHARS:
            raise bad(f"{where}.{name} is longer than {MAX_TEXT_CHARS} characters")
        values[name] = value.strip()
    if not (len(values["finding"]) == 20 and all(c in "0123456789abcdef" for c in values["finding"])):
        raise bad(f"{where}.finding {values['finding']!r} is not a finding key of the report")
    if values["decision"] not in DECISIONS:
        raise bad(f"{where}.decision {values['decision']!r} is not one of {list(DECISIONS)}")
    if values["reason"] not in reasons:
        raise bad(f"{where}.reason {values['reason']!r} is not one of the configured [review] reasons {list(reasons)}")
    if not values["reviewer"]:
        raise bad(f"{where}.reviewer is empty: every decision names its reviewer")
    try:
        datetime.fromisoformat(values["decided_at"].replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{where}.decided_at {values['decided_at']!r} is not an ISO date and time") from None
    return Decision(**values)


@dataclass(frozen=True)
class ImportResult:
    added: int  # findings decided for the first time
    updated: int  # a newer decision replaced the stored one
    unchanged: int  # the same or an older decision was already stored
    unmatched: int  # decisions on findings no current verdict holds (re-audited or removed since)


def import_reviews(out: Path, path: Path, reasons: tuple[str, ...]) -> ImportResult:
    """Read the review file at `path` into `OUT/audit.sqlite`, in one transaction. Importing the same
    file again changes nothing; of two decisions on one finding the later one is kept."""
    decisions = read_review_file(path, reasons)
    db = ResultsDB(out)
    try:
        findings = current_findings(db)
        stored = {key: at for key, at in db.db.execute("SELECT finding_key, decided_at FROM reviews")}
        added = updated = unchanged = 0
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        db.db.execute("BEGIN IMMEDIATE")
        try:
            for d in decisions:
                known = stored.get(d.finding)
                if known is not None and known >= d.decided_at:
                    unchanged += 1
                    continue
                added, updated = (added + 1, updated) if known is None else (added, updated + 1)
                stored[d.finding] = d.decided_at
                finding = findings.get(d.finding)
                db.db.execute(
                    "INSERT OR REPLACE INTO reviews (finding_key, call_id, rule_id, moment, decision, reason,"
                    " note, reviewer, decided_at, imported_at, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (d.finding, finding.call_id if finding else None, d.rule_id, d.moment, d.decision,
                     d.reason, d.note, d.reviewer, d.decided_at, now, path.name))
        except BaseException:
            db.db.execute("ROLLBACK")
            raise
        db.db.execute("COMMIT")
        unmatched = sum(d.finding not in findings for d in {d.finding: d for d in decisions}.values())
    finally:
        db.close()
    return ImportResult(added, updated, unchanged, unmatched)


# --- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFigures:
    rule_id: str
    flagged: int  # current flagged findings
    confirmed: int
    dismissed: int

    @property
    def reviewed(self) -> int:
        return self.confirmed + self.dismissed

    @property
    def open(self) -> int:
        return self.flagged - self.reviewed

    @property
    def dismissal_rate(self) -> float | None:
        """Share of reviewed findings reviewers dismissed; None before any review."""
        return self.dismissed / self.reviewed if self.reviewed else None


def review_figures(db: ResultsDB) -> tuple[list[RuleFigures], int]:
    """Per rule with flagged findings: flagged, confirmed, dismissed (current findings only); and the
    number of stored decisions that match no current finding."""
    findings, reviews = current_findings(db), stored_reviews(db)
    counts: dict[str, list[int]] = {}
    for key, finding in findings.items():
        row = counts.setdefault(finding.rule_id, [0, 0, 0])
        row[0] += 1
        decision = reviews.get(key, {}).get("decision")
        if decision:
            row[1 + DECISIONS.index(decision)] += 1
    stale = sum(key not in findings for key in reviews)
    return [RuleFigures(rule_id, *row) for rule_id, row in sorted(counts.items())], stale


def export_review_csv(out: Path, path: Path, labels: LabelsConfig) -> int:
    """One row per rule with flagged findings (UTF-8 with BOM, for Excel); returns the rows."""
    db = ResultsDB(out)
    try:
        figures, _ = review_figures(db)
    finally:
        db.close()
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(("rule_id", "name", "category", "flagged", "reviewed", "open", "confirmed",
                         "dismissed", "dismissal_rate"))
        for f in figures:
            label = labels.rules.get(f.rule_id)
            writer.writerow((f.rule_id, label.name if label else "", label.category if label else "",
                             f.flagged, f.reviewed, f.open, f.confirmed, f.dismissed,
                             "" if f.dismissal_rate is None else round(f.dismissal_rate, 4)))
    return len(figures)
