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
