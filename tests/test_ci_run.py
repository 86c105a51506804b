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


def test_both_ends_of_the_supported_range_are_pinned_alike() -> None:
    """constraints-oldest.txt pins the same packages as constraints.txt, at the range's oldest OpenTelemetry."""

    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text().splitlines()
        return dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))

    newest, oldest = pins("constraints.txt"), pins("constraints-oldest.txt")
    # Packages first released after the oldest set (constraints-oldest.txt says which) are not pinned there.
    assert oldest.keys() <= newest.keys()
    assert newest.keys() - oldest.keys() <= {"opentelemetry-exporter-http-transport", "opentelemetry-exporter-otlp-common"}
    assert newest["opentelemetry-sdk"] != oldest["opentelemetry-sdk"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"opentelemetry-sdk>={".".join(oldest["opentelemetry-sdk"].split(".")[:2])},' in pyproject
    assert "pytest-oldest" in re.search(r"^test:.*$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(0)
