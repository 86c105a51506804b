"""`otelpipe slo` subcommands, run through argparse as the main CLI will."""

import argparse
from pathlib import Path

import pytest
from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats

from otelpipe.slo.cli import register
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.spec import load_spec
from otelpipe.slo.state import SLOStateStore

DEMO = Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="otelpipe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("slo", "validate", str(DEMO)) == 0
    assert "3 SLO(s) OK" in capsys.readouterr().out
    assert run("slo", "validate", str(DEMO), "--boundaries", "0.1,0.4,0.8") == 2
    assert "slos[1].sli.threshold" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: otelpipe/v1\nservice: s\nslos:\n  - {name: a, objective: high, sli: {kind: availability}}\n"
    )
    assert run("slo", "validate", str(bad)) == 2
    assert "slos[0].objective: got 'high'" in capsys.readouterr().err


def test_rules_and_dashboard_to_file(tmp_path: Path) -> None:
    assert run("slo", "rules", str(DEMO), "-o", str(tmp_path / "r.yml")) == 0
    assert "slo:sli_error:ratio_rate5m" in (tmp_path / "r.yml").read_text()
    assert run("slo", "dashboard", str(DEMO), "-o", str(tmp_path / "d.json")) == 0
    assert '"panels"' in (tmp_path / "d.json").read_text()


def test_status_from_persisted_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps cells at the terminal width
    assert run("slo", "status", "--state-dir", str(tmp_path)) == 2
    assert "not found" in capsys.readouterr().err
    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(load_spec(DEMO), boundaries=(0.1, 0.5, 1.0), clock=lambda: 1_000_000.0, state=store)
    attrs = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ev.tick(REDSnapshot((0.1, 0.5, 1.0), (SeriesStats(attrs, 40, 40, (40, 0, 0, 0), 0, 0, 0, 1),), 0))
    ev.flush()
    store.close()
    assert run("slo", "status", "--state-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "shop/api-availability" in out and "FIRING page" in out and "99.9% / 30d" in out
    assert run("slo", "status", "--state-dir", str(tmp_path), "--spec", str(DEMO)) == 0
    assert "shop/order-processing" in capsys.readouterr().out
