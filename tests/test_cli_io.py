"""The CLI's shared edges, through the real `otelpipe.cli.main`: --json, `-` for stdin/stdout, one error form."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otelpipe.cli import main

DEMO = Path(__file__).parents[1] / "otelpipe" / "demo" / "slo.yaml"
BAD_SPEC = (
    "version: otelpipe/v1\nservice: s\nslos:\n  - {name: a, objective: high, sli: {kind: availability}}\n"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTELPIPE_"):
            monkeypatch.delenv(name)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("otelpipe: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_rules_to_a_missing_directory_is_one_clean_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "x.yml"
    assert main(["slo", "rules", str(DEMO), "-o", str(target)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot write {target}" in line and "No such file or directory" in line
    assert main(["slo", "dashboard", str(DEMO), "-o", str(target)]) == 2
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", [["slo", "rules"], ["slo", "dashboard"], ["slo", "validate"]])
def test_missing_and_invalid_spec_one_clean_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, str(tmp_path / "nope.yaml")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nope.yaml" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    assert main([*command, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "slos[0].objective: got 'high'" in err
    assert all(line.startswith("otelpipe: error: ") for line in err.splitlines() if "slos[0]" in line)
    assert "Traceback" not in err


def test_dash_is_stdin_and_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO.read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["slo", "rules", "-", "-o", "-"]) == 0
    assert "slo:sli_error:ratio_rate5m" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["slo", "validate", "-"]) == 0
    assert "<stdin>: 3 SLO(s), 5 rule(s) OK" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BAD_SPEC.encode())))
    assert main(["slo", "validate", "-"]) == 2
    err = capsys.readouterr().err
    assert "<stdin>" in err and "slos[0].objective" in err and "otelpipe-stdin" not in err  # no temp path


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slo", "validate", str(DEMO), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["errors"] == []
    assert len(data["slos"]) == 3 and data["slos"][0]["selector"]["service.name"] == "shop"
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    assert main(["slo", "validate", str(bad), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "slos[0].objective" in data["errors"][0]


def test_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats
    from otelpipe.slo.evaluator import SLOEvaluator
    from otelpipe.slo.spec import load_spec
    from otelpipe.slo.state import SLOStateStore

    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(load_spec(DEMO), boundaries=(0.1, 0.4, 1.0), clock=lambda: 1_000_000.0, state=store)
    attrs = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ev.tick(REDSnapshot((0.1, 0.4, 1.0), (SeriesStats(attrs, 40, 40, (40, 0, 0, 0), 0, 0, 0, 1),), 0))
    ev.flush()
    store.close()
    assert main(["slo", "status", "--state-dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    firing = {s["key"]: s["firing"] for s in data["slos"]}
    assert firing["shop/api-availability"] is True
    assert data["save_interval_s"] > 0
    assert main(["slo", "status", "--state-dir", str(tmp_path / "none"), "--json"]) == 2
    _one_error_line(capsys.readouterr().err)


def test_incidents_list_json_on_an_empty_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "list", "--state-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["incidents", "list", "--state-dir", str(tmp_path)]) == 0
    assert "no incidents" in capsys.readouterr().out
    assert main(["incidents", "report", "--state-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0
    assert main(["incidents", "list", "--state-dir", str(tmp_path / "missing"), "--json"]) == 2
    _one_error_line(capsys.readouterr().err)


def test_check_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELPIPE_RED_CARDINALITY_LIMIT", "500")
    assert main(["check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    row = next(v for v in data["variables"] if v["name"] == "OTELPIPE_RED_CARDINALITY_LIMIT")
    assert row == {"name": "OTELPIPE_RED_CARDINALITY_LIMIT", "value": "500", "source": "env"}
    monkeypatch.setenv("OTELPIPE_SLO_INTERVAL", "soon")
    assert main(["check", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and any("OTELPIPE_SLO_INTERVAL" in e for e in data["errors"])


def test_check_piped_never_cuts_names() -> None:
    """Piped into a narrow pipe: every variable name whole, on its row, with its value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(COLUMNS="40", OTELPIPE_INCIDENT_RENOTIFY="2h")
    exe = str(Path(sys.executable).with_name("otelpipe"))
    result = subprocess.run([exe, "check"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    from otelpipe.config import VARIABLES

    lines = result.stdout.splitlines()
    for variable in VARIABLES:
        assert any(line.split()[:1] == [variable.name] for line in lines), variable.name
    row = next(line for line in lines if line.startswith("OTELPIPE_INCIDENT_RENOTIFY "))
    assert row.split()[1:] == ["2h", "env"]


def test_usage_errors_use_the_same_one_line_form(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["slo", "rules", str(DEMO), "--unit", "us"])
    assert exit_info.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--unit" in line and "'us'" in line and "otelpipe slo rules --help" in line



def _run_cli(*args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """A command that starts servers or global SDK providers: in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(env_vars)
    exe = str(Path(sys.executable).with_name("otelpipe"))
    return subprocess.run([exe, *args], check=False, env=env, capture_output=True, text=True, timeout=60)


def test_gateway_configuration_error_uses_the_same_one_line_form() -> None:
    result = _run_cli("gateway", "--grpc-port", "-1", "--http-port", "0", "--duration", "1")
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert "OTELPIPE_SLO_FILE" in line and "SLO spec" in line


@pytest.mark.parametrize("command", ["sink", "gateway"])
def test_a_taken_port_uses_the_same_one_line_form(tmp_path: Path, command: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = _run_cli(
            command,
            *("--grpc-port", "-1", "--http-port", port, "--duration", "1"),
            OTELPIPE_SLO_FILE=str(DEMO),  # the gateway gets past its configuration to the bind
            OTELPIPE_STATE_DIR=str(tmp_path / "state"),
        )
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert f"cannot start the {command}" in line and "Address already in use" in line
    assert "cannot start" not in result.stdout
