"""Incident report (MTTR) and the `otelpipe incidents list|report` CLI over a real store."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from otelpipe.incidents.cli import register
from otelpipe.incidents.model import Incident
from otelpipe.incidents.report import format_duration, format_report, summarize
from otelpipe.incidents.store import IncidentStore

NOW = 1_714_564_800.0


def incident(key: str, opened_at: float, recovered_after: float | None = None) -> Incident:
    base = Incident(
        id=f"inc-{key}-{int(opened_at)}",
        dedup_key=f"otelpipe/{key}",
        key=key,
        service=key.split("/", maxsplit=1)[0],
        name=key.split("/")[1],
        kind="slo",
        severity="critical",
        status="open",
        summary=f"{key} burning",
        opened_at=opened_at,
        updated_at=opened_at,
        last_notified_at=opened_at,
    )
    if recovered_after is None:
        return base
    recovered = opened_at + recovered_after
    return replace(base, status="resolved", recovered_at=recovered, resolved_at=recovered + 300)


INCIDENTS = [
    incident("checkout/availability", NOW - 7200, 600),
    incident("checkout/latency", NOW - 3600, 1200),
    incident("cart/errors", NOW - 60),
]


def test_mttr_counts_until_recovery_not_hold_down() -> None:
    report = summarize(INCIDENTS)
    assert (report.total, report.open, report.resolved) == (3, 1, 2)
    assert report.mttr_s == 900 and report.longest_s == 1200
    assert [(f.service, f.total, f.open, f.mttr_s) for f in report.by_service] == [
        ("cart", 1, 1, None),
        ("checkout", 2, 0, 900),
    ]
    text = format_report(report)
    assert "incidents: 3 (1 open, 2 resolved)" in text
    assert "MTTR: 15m00s   longest: 20m00s" in text


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, 45, 750, 11100, 187200)] == [
        "-",
        "45s",
        "12m30s",
        "3h05m",
        "2d04h",
    ]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="otelpipe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.func(args)
    return result


def test_cli_list_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = IncidentStore(tmp_path)
    for item in INCIDENTS:
        store.save(item)
    store.close()

    assert run_cli("incidents", "list", "--state-dir", str(tmp_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["STATUS", "SEVERITY", "OPENED", "(UTC)", "DURATION", "KEY", "SUMMARY"]
    assert [line.split()[0] for line in lines[1:]] == ["open", "resolved", "resolved"]
    assert "cart/errors" in lines[1] and "20m00s" in lines[2]

    assert run_cli("incidents", "list", "--state-dir", str(tmp_path), "--open", "--json") == 0
    assert [i["key"] for i in json.loads(capsys.readouterr().out)] == ["cart/errors"]

    assert run_cli("incidents", "report", "--state-dir", str(tmp_path), "--json") == 0
    assert json.loads(capsys.readouterr().out)["mttr_s"] == 900


def test_cli_reports_missing_history_and_bad_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("incidents", "report", "--state-dir", str(tmp_path / "nothing")) == 2
    assert "otelpipe: error: no state directory" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
    IncidentStore(tmp_path).close()
    assert run_cli("incidents", "list", "--state-dir", str(tmp_path), "--since", "a week") == 2
    assert "--since: got 'a week'" in capsys.readouterr().err


def test_cli_list_json_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`otelpipe incidents list --json | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    store = IncidentStore(tmp_path)
    for n in range(300):  # more output than a pipe buffer holds
        store.save(incident(f"shop/slo-{n}", NOW - n))
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELPIPE_")}
    env["OTELPIPE_STATE_DIR"] = str(tmp_path)  # --state-dir defaults to it
    exe = str(Path(sys.executable).with_name("otelpipe"))
    with subprocess.Popen(
        [exe, "incidents", "list", "--json", "--limit", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().strip() == b"["
        proc.stdout.close()  # what `head -1` does once it has its line
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
