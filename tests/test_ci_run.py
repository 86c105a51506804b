"""`.ci/run` runs the README's test command and never stops processes it did not start."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", script, re.MULTILINE)
    assert "make test" in (ROOT / "README.md").read_text()


def test_nothing_is_stopped_by_name() -> None:
    """A developer's own Prometheus must survive `make test`: no pkill/killall anywhere we run."""
    sources = [ROOT / ".ci" / "run", ROOT / "Makefile", *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    by_name = re.compile(r"\b(pkill|killall)\b|systemctl\s+stop")
    offenders = [str(p.relative_to(ROOT)) for p in sources if p != Path(__file__) and by_name.search(p.read_text())]
    assert offenders == []
