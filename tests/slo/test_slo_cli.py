"""`otelpipe slo` subcommands, run through argparse as the main CLI will."""

import argparse
import time
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
    out = capsys.readouterr().out
    assert "3 SLO(s), 5 rule(s) OK" in out
    assert "service.name=shop" in out and "(('" not in out  # dimensions, not Python tuples
    assert run("slo", "validate", str(DEMO), "--boundaries", "0.1,0.5,0.8") == 2
    assert "slos[1].sli.threshold" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: otelpipe/v1\nservice: s\nslos:\n  - {name: a, objective: high, sli: {kind: availability}}\n"
    )
    assert run("slo", "validate", str(bad)) == 2
    assert "slos[0].objective: got 'high'" in capsys.readouterr().err


BROKEN = """\
version: otelpipe/v1
service: shop
slos:
  - {name: ok, objective: 99%, sli: {kind: availability}}
  - {name: slow, objective: 99, sli: {kind: latency, threshold: 300ms}}
  - {name: typo, objectve: 99.9, sli: {kind: availabilty}}
rules:
  - {name: errors, service: shop, error_rate: {above: 5%}}
  - {name: bad, servce: shop, error_rate: {above: 5%}}
"""


def test_validate_reports_every_problem_with_the_apps_boundaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTELPIPE_RED_BUCKETS", raising=False)
    spec = tmp_path / "slo.yaml"
    spec.write_text(BROKEN)
    assert run("slo", "validate", str(spec)) == 2
    captured = capsys.readouterr()
    # 300ms is not a default RED bucket boundary: found without --boundaries, naming the nearest
    assert "slos[1].sli.threshold: got '0.3s', expected a RED histogram bucket boundary" in captured.err
    assert "nearest: 0.2s or 0.4s" in captured.err  # the spanmetrics connector's default buckets
    assert "slos[2].objectve: got 'objectve'" in captured.err  # the typo itself
    assert "slos[2].sli.kind: got 'availabilty'" in captured.err  # and the second problem of that SLO
    assert "rules[1].servce: got 'servce'" in captured.err
    assert "an SLO with an `objective`" in captured.err
    assert "5 problem(s)" in captured.err
    assert "SLO shop/ok: 99% availability" in captured.out  # `99%` reads like `above: 5%`
    assert "rule shop/errors: error rate > 5%" in captured.out
    # the boundaries the app will use come from OTELPIPE_RED_BUCKETS
    monkeypatch.setenv("OTELPIPE_RED_BUCKETS", "0.1,0.3,1")
    assert run("slo", "validate", str(spec)) == 2
    captured = capsys.readouterr()
    assert "slos[1]" not in captured.err and "4 problem(s)" in captured.err
    assert "SLO shop/slow: 99% latency <= 300ms" in captured.out


def test_rules_and_dashboard_to_file(tmp_path: Path) -> None:
    assert run("slo", "rules", str(DEMO), "-o", str(tmp_path / "r.yml")) == 0
    assert "slo:sli_error:ratio_rate5m" in (tmp_path / "r.yml").read_text()
    assert run("slo", "dashboard", str(DEMO), "-o", str(tmp_path / "d.json")) == 0
    assert '"panels"' in (tmp_path / "d.json").read_text()


def test_rules_follow_the_apps_unit_and_buckets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.yml"
    assert run("slo", "rules", str(DEMO), "-o", str(out)) == 0
    assert "traces_span_metrics_duration_milliseconds_bucket{" in out.read_text()  # default ms
    monkeypatch.setenv("OTELPIPE_RED_UNIT", "s")
    assert run("slo", "rules", str(DEMO), "-o", str(out)) == 0
    assert 'traces_span_metrics_duration_seconds_bucket{service_name="shop"' in out.read_text()
    assert run("slo", "rules", str(DEMO), "--unit", "ms", "-o", str(out)) == 0
    assert "_milliseconds_bucket{" in out.read_text()
    # 400 ms is not among the app's buckets: refused, naming the nearest
    monkeypatch.setenv("OTELPIPE_RED_BUCKETS", "0.1,0.5,1")
    assert run("slo", "rules", str(DEMO), "-o", str(out)) == 2
    assert "nearest: 0.1s or 0.5s" in capsys.readouterr().err


def test_status_from_persisted_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps cells at the terminal width
    assert run("slo", "status", "--state-dir", str(tmp_path)) == 2
    assert "not found" in capsys.readouterr().err
    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(load_spec(DEMO), boundaries=(0.1, 0.4, 1.0), clock=lambda: 1_000_000.0, state=store)
    attrs = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ev.tick(REDSnapshot((0.1, 0.4, 1.0), (SeriesStats(attrs, 40, 40, (40, 0, 0, 0), 0, 0, 0, 1),), 0))
    ev.flush()
    store.close()
    assert run("slo", "status", "--state-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "shop/api-availability" in out and "FIRING page" in out and "objective 99.9% over 30d" in out
    assert "error budget exhausted x1000" in out  # not "-99900.0%"
    assert run("slo", "status", "--state-dir", str(tmp_path), "--spec", str(DEMO)) == 0
    assert "shop/order-processing" in capsys.readouterr().out


def test_status_reads_short_to_long_full_names_and_says_how_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("OTELPIPE_STATE_SAVE_INTERVAL", "2s")
    spec = tmp_path / "slo.yaml"
    names = ["api-availability-for-the-checkout-eu-region", "api-availability-for-the-checkout-us-region"]
    spec.write_text(
        "version: otelpipe/v1\nservice: checkout-service\nslos:\n"
        + "".join(f"  - {{name: {n}, objective: 99.9, sli: {{kind: availability}}}}\n" for n in names)
    )
    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(load_spec(spec), boundaries=(0.1,), clock=lambda: time.time() - 30, state=store)
    ev.tick(REDSnapshot((0.1,), (), 0))
    ev.flush()
    store.close()
    assert run("slo", "status", "--state-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    for name in names:
        assert f"checkout-service/{name}" in out  # whole, on one line, never cut to look alike
    burn_line = next(line for line in out.splitlines() if line.strip().startswith("burn "))
    labels = [pair.split(":")[0] for pair in burn_line.split()[1:]]
    assert labels == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]  # short to long, not as text
    words = " ".join(out.split())
    assert "figures saved 30s ago" in words
    assert "the app saves every 2s (OTELPIPE_STATE_SAVE_INTERVAL) and at shutdown" in words
    assert "the app has stopped" in words  # 30 s old with a 2 s interval: said, not hidden


def test_status_spec_reads_windows_at_the_apps_time_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo saves windows divided by 720; `--spec` must read them at that scale, not show zeros."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("OTELPIPE_SLO_TIME_SCALE", "720")
    now = time.time()
    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(
        load_spec(DEMO), boundaries=(0.1, 0.4, 1.0), clock=lambda: now, state=store, time_scale=720
    )
    attrs = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ev.tick(REDSnapshot((0.1, 0.4, 1.0), (SeriesStats(attrs, 40, 40, (40, 0, 0, 0), 0, 0, 0, 1),), 0))
    ev.flush()
    store.close()
    assert run("slo", "status", "--state-dir", str(tmp_path), "--spec", str(DEMO)) == 0
    out = capsys.readouterr().out
    block = out[out.index("shop/api-availability") :].split("\n")[:3]
    assert "SLI 0.000% good of 40" in " ".join(block)  # the saved counts, not "no traffic"
