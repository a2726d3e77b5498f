"""Reviewers' decisions (audit/present/review.py): what identifies a finding, `audit review import` and the
figures of `audit status` / `audit export`. The browser side (deciding, exporting) is in
tests/test_report.py."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from audit.run.batch import BatchOptions, run_batch
from audit.cli import app
from audit.configload import load_config
from audit.present.report import write_report
from audit.present.review import current_findings
from audit.present.store import MIGRATIONS, ResultsDB
from conftest import FIXTURE_CALLS

PHONE_NAME = "138 1234 5678"


def _night(folder, names):
    folder.mkdir(parents=True)
    for name, as_name in names:
        for path in FIXTURE_CALLS.glob(f"{name}.*"):
            shutil.copy(path, folder / path.name.replace(name, as_name, 1))
    return folder


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    night = _night(root / "night", [("raised_voice", "raised_voice"), ("late_answer", PHONE_NAME)])
    out = root / "out"
    run_batch([night], out, load_config(), BatchOptions(asr_mode="sidecar", workers=1))
    return night, out


def _findings(out):
    db = ResultsDB(out)
    try:
        return current_findings(db)
    finally:
        db.close()


def cli(*args):
    done = CliRunner().invoke(app, [str(a) for a in args])
    return done.exit_code, done.output


def review_file(path, decisions):
    path.write_text(json.dumps({"schema": "audit-review/1", "decisions": decisions}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def decision(finding, decision="dismiss", reason="规则误判", at="2026-11-23T09:00:00.000Z", **more):
    return {"finding": finding.key, "rule_id": finding.rule_id, "moment": finding.moment, "decision": decision,
            "reason": reason, "note": "", "reviewer": "李雷", "decided_at": at, **more}


def test_a_finding_keeps_its_key_when_the_call_is_audited_again_and_in_a_masked_report(audited, tmp_path):
    night, out = audited
    out = shutil.copytree(out, tmp_path / "out")
    before = _findings(out)
    assert len(before) >= 5 and len({f.call_id for f in before.values()}) == 2
    site = tmp_path / "site.toml"  # another config: every call audited again, its records masked
    site.write_text('[privacy]\nmask_outputs = true\n[rules."timing.three_rings"]\nweight = 4\n', encoding="utf-8")
    run_batch([night], out, load_config(site), BatchOptions(asr_mode="sidecar", workers=1))
    assert _findings(out).keys() == before.keys()
    write_report(out, load_config(site))  # a masked record's page hashes the call's id in clear
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    rows = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])["calls"]
    assert {key for row in rows for key in row["findings"]} == before.keys()
    assert "1234" not in html


def test_import_is_idempotent_and_the_later_decision_wins(audited, tmp_path):
    _, out = audited
    out = shutil.copytree(out, tmp_path / "out")
    first, second = list(_findings(out).values())[:2]
    file = review_file(tmp_path / "review.json", [decision(first), decision(second, "confirm", "属实")])
    code, output = cli("review", "import", file, "--out", out)
    assert code == 0 and "2 decisions added, 0 updated, 0 already imported" in output
    code, output = cli("review", "import", file, "--out", out)  # again: nothing changes
    assert code == 0 and "0 decisions added, 0 updated, 2 already imported" in output
    later = review_file(tmp_path / "later.json", [decision(first, "confirm", "属实", at="2026-11-24T09:00:00.000Z"),
                                                  decision(second, at="2026-11-22T09:00:00.000Z")])  # older: ignored
    code, output = cli("review", "import", later, "--out", out)
    assert code == 0 and "0 decisions added, 1 updated, 1 already imported" in output
    with sqlite3.connect(out / "audit.sqlite") as db:
        rows = dict(db.execute("SELECT finding_key, decision FROM reviews"))
    assert rows == {first.key: "confirm", second.key: "confirm"}
    code, output = cli("status", out)
    assert f"findings reviewed: 2 of {len(_findings(out))}" in output
    code, output = cli("export", out, "--csv", tmp_path / "calls.csv", "--findings", tmp_path / "findings.csv")
    lines = (tmp_path / "findings.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].endswith("finding_key,decision,reason,note,reviewer,decided_at")
    assert sum(",confirm,属实,,李雷," in line for line in lines) == 2


def test_a_decision_on_a_finding_no_longer_current_is_kept_and_counted(audited, tmp_path):
    _, out = audited
    out = shutil.copytree(out, tmp_path / "out")
    gone = next(iter(_findings(out).values()))
    file = review_file(tmp_path / "review.json", [decision(gone) | {"finding": "0" * 20}])
    code, output = cli("review", "import", file, "--out", out)
    assert code == 0 and "1 on findings no longer current" in output
    assert "decisions on findings no longer current: 1" in cli("status", out)[1]


@pytest.mark.parametrize("content, reason", [
    ("not json", "not valid JSON"),
    ('{"decisions": []}', 'not a review file: expected {"schema": "audit-review/1"'),
    ('{"schema": "audit-review/1", "decisions": {}}', '"decisions" must be a list'),
    ('{"schema": "audit-review/1", "decisions": [{"finding": "abc"}]}', "decisions[0].rule_id must be a string"),
    ('{"schema": "audit-review/1", "decisions": [DECISION]}', None),
])
def test_a_bad_review_file_is_refused_naming_the_file_and_the_reason(audited, tmp_path, content, reason):
    _, out = audited
    finding = next(iter(_findings(out).values()))
    path = tmp_path / "bad.json"
    if reason is None:  # a decision each of whose fields is wrong in turn
        for field, value, why in (("decision", "maybe", "decisions[0].decision 'maybe' is not one of"),
                                  ("reason", "不喜欢", "is not one of the configured [review] reasons"),
                                  ("reviewer", " ", "decisions[0].reviewer is empty"),
                                  ("decided_at", "yesterday", "is not an ISO date and time"),
                                  ("finding", "<script>", "is not a finding key of the report")):
            review_file(path, [decision(finding) | {field: value}])
            code, output = cli("review", "import", path, "--out", out)
            assert code == 2 and str(path) in output.replace("\n", "") and why in output.replace("\n", ""), output
        return
    path.write_text(content, encoding="utf-8")
    code, output = cli("review", "import", path, "--out", out)
    assert code == 2 and str(path) in output.replace("\n", "") and reason in output.replace("\n", ""), output
    with sqlite3.connect(out / "audit.sqlite") as db:
        assert db.execute("SELECT count(*) FROM reviews").fetchone() == (0,)


def test_a_version_4_database_gains_the_reviews_table(tmp_path):
    path = tmp_path / "audit.sqlite"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(f"{script}; PRAGMA user_version = {number};")
    ResultsDB(tmp_path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (5,)
        assert db.execute("SELECT count(*) FROM reviews").fetchone() == (0,)
