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
