"""The README is the user's manual: its commands and its variable table must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from otelpipe.config import VARIABLES, markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_env_table_equals_the_declared_variables():
    section = README.split("<!-- env-table:start -->")[1].split("<!-- env-table:end -->")[0].strip()
    assert section == markdown_table()
    for variable in VARIABLES:
        assert f"`{variable.name}`" in section


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in README and "make demo" in README


def test_every_otelpipe_variable_used_in_code_is_declared():
    declared = {v.name for v in VARIABLES} | {old for v in VARIABLES for old in v.deprecated_names}
    used: set[str] = set()
    for path in [*ROOT.glob("otelpipe/**/*.py"), *ROOT.glob("processors/*.py"), *ROOT.glob("exporters/*.py")]:
        used.update(re.findall(r"\bOTELPIPE_[A-Z_]+[A-Z]\b", path.read_text(encoding="utf-8")))
    assert used - declared == set()


def test_quick_start_says_make_test_runs_the_suite_on_both_pinned_sets():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_target = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_target is not None and {"pytest", "pytest-oldest"} <= set(test_target.group(1).split())
    assert re.search(r"^pytest-oldest: \$\(OLDEST_STAMP\)", makefile, re.M)
    assert re.search(r"^\$\(OLDEST_STAMP\):.*constraints-oldest\.txt", makefile, re.M)
    quick_start = README.split("## Quick start")[1].split("\n## ")[0]
    make_test = quick_start.split("make test", 1)[1].split("```", 1)[0]
    assert "constraints.txt" in make_test and "constraints-oldest.txt" in make_test, make_test
    assert "oldest supported OpenTelemetry" in make_test
