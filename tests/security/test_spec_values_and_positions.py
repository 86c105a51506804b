"""Spec errors never echo a secret-looking value; the gateway's stream positions are private and symlink-proof."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from otelpipe.fleet.gateway import POSITIONS_FILE, StreamPositions
from otelpipe.fleet.merger import REDStreamMerger
from otelpipe.slo.spec import SLOSpecError, load_spec

SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


@pytest.mark.parametrize(
    "document",
    [
        f"version: {SECRET}\nslos: []\n",
        f"version: otelpipe/v1\nslos:\n  - name: a\n    objective: {SECRET}\n",
        "version: otelpipe/v1\nslos:\n  - name: a\n    objective: " + "x" * 300 + "\n",
    ],
)
def test_a_credentials_file_given_as_spec_is_never_echoed(tmp_path: Path, document: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(document)
    with pytest.raises(SLOSpecError) as raised:
        load_spec(str(path))
    message = str(raised.value)
    assert SECRET not in message and "x" * 50 not in message
    assert "got" in message  # still says what was wrong


def test_short_typos_are_still_shown(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("version: otelpipe/v1\nslos:\n  - name: a\n    objective: high\n")
    with pytest.raises(SLOSpecError, match="got 'high'"):
        load_spec(str(path))


def _positions(tmp_path: Path) -> StreamPositions:
    return StreamPositions(REDStreamMerger(), str(tmp_path), save_interval_s=0.0)


def test_positions_file_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        positions = _positions(tmp_path)
        positions()  # one tick: takes positions (and saves, the interval being 0)
        positions.save()
    finally:
        os.umask(old)
    saved = tmp_path / POSITIONS_FILE
    assert saved.exists()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_positions_are_not_written_or_read_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    (tmp_path / POSITIONS_FILE).symlink_to(victim)
    positions = _positions(tmp_path)
    assert positions.restore() == 0
    positions()
    positions.save()
    assert victim.read_text() == "do not touch"
    assert (tmp_path / POSITIONS_FILE).is_symlink()


def test_metric_rules_read_the_file_with_the_same_budgets(tmp_path: Path) -> None:
    """The metric-rule loader once read YAML unbounded; an alias bomb must be refused there too."""
    from otelpipe.incidents.metric_rules import load_metric_rules
    from otelpipe.incidents.rules import RuleSpecError

    layers = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    layers += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(layers) + "\nrules: *a8\n")
    with pytest.raises(RuleSpecError, match="nodes"):
        load_metric_rules(str(bomb))


def test_the_slo_file_is_read_once_for_slos_rules_and_metric_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import otelpipe.slo.check as check

    reads: list[str] = []
    real = check.read_spec_text

    def counting(path: object) -> str:
        reads.append(str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(check, "read_spec_text", counting)
    spec = Path(__file__).resolve().parents[2] / "otelpipe" / "demo" / "slo.yaml"
    result = check.check_slo_file(spec, (0.1, 0.2, 0.4, 0.8))
    assert result.spec.slos and result.rules and result.metric_rules
    assert reads == [str(spec)]
