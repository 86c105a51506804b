"""Mutation check of the settings wiring: break `config.py` / `pipeline.py` one way at a time, run the tests.

Issue 18 asks that a mutation of the path env -> `Settings` -> component fails a test. mutmut 3
does not fit this layout: it copies only the mutated files into `mutants/` (the package-dir
mapping puts `processors/` and `exporters/` elsewhere, and data files such as the demo SLO spec
are left behind), and the wiring tests build the pipeline in subprocesses. So this runner does
the small part needed: each mutant is one AST edit of one file, written into a wheel-shaped copy
of the package (`otelpipe/`, `processors/` -> `otelpipe/processors`, `exporters/` ->
`otelpipe/exporters`) that `PYTHONPATH` puts ahead of the editable install, so the probe
subprocesses and the `otelpipe` CLI import the mutant too. One mutant runs at a time.

Operators (aimed at wiring, not at value parsers, which tests/test_config.py covers directly):
  setting-swap   two `Variable(...)`s of the same type exchange the fields they fill (config.py)
  default-swap   a settings dataclass field takes another same-typed field's (different) default
  attr-swap      `settings.<section>.<field>` reads another field of the same type
  kwarg-drop     a keyword argument of a call is left out
  kwarg-swap     two neighbouring keyword arguments exchange their values
  bool-flip      True <-> False
  cond-negate    an `if` / conditional expression tests the opposite
  stmt-delete    a statement becomes `pass` (imports, docstrings and `_log` calls are skipped)

Killed = the test selection fails (or times out); survived = it passes. Before any mutant the
unmutated (AST round-tripped) copy must pass, so a kill is the mutant's doing.

    .venv/bin/python bench/mutate_wiring.py            # all ~300 mutants (hours on 2 busy cores)
    .venv/bin/python bench/mutate_wiring.py --list     # what would run
    .venv/bin/python bench/mutate_wiring.py --only pipeline.py:attr-swap
    .venv/bin/python bench/mutate_wiring.py --shard 1/2 & .venv/bin/python bench/mutate_wiring.py --shard 2/2
"""

from __future__ import annotations

import argparse
import ast
import copy
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("otelpipe/config.py", "otelpipe/pipeline.py")
# Fast tests that build settings or a pipeline (-x stops at the first failure, so the fastest go first).
TESTS = (
    "tests/test_config.py",
    "tests/wiring",
    "tests/test_cli_check.py",
)
# Functions whose statements are wiring (value parsers and diagnostics are out of scope).
SCOPE = {
    "otelpipe/config.py": {"_default", "from_env", "load_settings", "_build"},
    "otelpipe/pipeline.py": {
        "shutdown",
        "configure",
        "configure_from_auto_instrumentation",
        "flask_instrumentor_kwargs",
        "_build_redactor",
        "_build_red",
        "_build",
        "_load_slo_file",
        "_notifiers",
        "_start_evaluation_contained",
        "_start_evaluation",
        "build",
        "_metric_reader",
    },
}

# Statement deletion only where each statement places a setting (the rest of `_build` is plumbing
# the e2e tests cover; deleting it there costs minutes per mutant for little).
STMT_SCOPE = {
    "otelpipe/config.py": SCOPE["otelpipe/config.py"],
    "otelpipe/pipeline.py": {"_build_redactor", "_build_red", "_notifiers", "build"},
}

# Run order: the mutations closest to "a setting does not reach its component" first, so a run cut
# short by --budget-min has measured those.
ORDER = (
    "setting-swap",
    "attr-swap",
    "kwarg-drop",
    "kwarg-swap",
    "cond-negate",
    "bool-flip",
    "default-swap",
    "stmt-delete",
)


@dataclass(frozen=True)
class Mutant:
    """One edit: the `index`-th node of `ast.walk` over `path`, changed by `op` (with `arg`)."""

    path: str
    op: str
    index: int
    line: int
    arg: str
    description: str

    @property
    def label(self) -> str:
        return f"{Path(self.path).name}:{self.line} {self.op}: {self.description}"


def _settings_fields(config_tree: ast.Module) -> dict[str, dict[str, str]]:
    """Section ('' for top level) -> field -> annotation, read from config.py's dataclasses."""
    classes: dict[str, dict[str, str]] = {}
    for node in config_tree.body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {
                item.target.id: ast.unparse(item.annotation)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    top = classes["Settings"]
    sections = {"": {name: ann for name, ann in top.items() if ann not in classes}}
    for name, ann in top.items():
        if ann in classes:
            sections[name] = classes[ann]
    return sections


def _alternative(
    fields: dict[str, str], name: str, differs: Callable[[str], bool] | None = None
) -> str | None:
    """The next field after `name` (cyclically) with the same annotation: a same-typed mix-up."""
    names = list(fields)
    if name not in fields:
        return None
    start = names.index(name)
    for other in names[start + 1 :] + names[:start]:
        if fields[other] == fields[name] and (differs is None or differs(other)):
            return other
    return None


def _setting_alternative(
    sections: dict[str, dict[str, str]], setting: str, differs: Callable[[str], bool] | None = None
) -> str | None:
    section, _, name = setting.rpartition(".")
    prefix = f"{section}." if section else ""
    other = _alternative(sections.get(section, {}), name, differs and (lambda o: differs(prefix + o)))
    return None if other is None else prefix + other


def _declared_defaults(config_tree: ast.Module) -> dict[str, str]:
    """Setting -> its variable's default, as source text (a default swap between equal ones is no change)."""
    defaults: dict[str, str] = {}
    for node in ast.walk(config_tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Variable" and len(node.args) > 1:
            setting = node.args[1]
            default = node.args[2] if len(node.args) > 2 else None
            default = next((k.value for k in node.keywords if k.arg == "default"), default)
            if isinstance(setting, ast.Constant) and default is not None:
                defaults[str(setting.value)] = ast.unparse(default)
    return defaults


_ATTR = re.compile(r"^(?:\w+\.)*?settings\.(?:(\w+)\.)?(\w+)$|^(inc)\.(\w+)$")


def _attr_target(node: ast.Attribute, sections: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    """(section, field) when `node` reads a settings field, e.g. `settings.red.exemplars` or `inc.console`."""
    match = _ATTR.match(ast.unparse(node))
    if match is None:
        return None
    section, name = (match[1] or "", match[2]) if match[3] is None else ("incidents", match[4])
    if section in sections and name in sections[section]:
        return section, name
    return None


def _is_skipped_statement(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Global, ast.Pass)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):  # docstring
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        return ast.unparse(stmt.value.func).startswith("_log.")
    return False


def candidates(path: str, tree: ast.Module, sections: dict[str, dict[str, str]]) -> Iterator[Mutant]:
    nodes = list(ast.walk(tree))
    parent = {child: node for node in nodes for child in ast.iter_child_nodes(node)}
    defaults = _declared_defaults(tree) if path.endswith("config.py") else {}

    def function_of(node: ast.AST) -> str | None:
        while node in parent:
            node = parent[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return None

    def short(node: ast.AST) -> str:
        text = ast.unparse(node).splitlines()[0]
        return text if len(text) <= 70 else text[:67] + "..."

    scope = SCOPE[path]
    for index, node in enumerate(nodes):
        line = getattr(node, "lineno", 0)
        func = function_of(node)
        # config.py's declarations: where each variable lands, and where code-built settings start
        if path.endswith("config.py") and func is None and isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name == "Variable" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                setting = str(node.args[1].value)
                other = _setting_alternative(sections, setting)
                if other:
                    variable = node.args[0].value if isinstance(node.args[0], ast.Constant) else "?"
                    desc = f"{variable} fills {other}, not {setting} (and the other way round)"
                    yield Mutant(path, "setting-swap", index, line, other, desc)
            if name == "_default" and node.args and isinstance(node.args[0], ast.Constant):
                setting = str(node.args[0].value)
                # only a field whose default differs: taking an equal default changes nothing
                other = _setting_alternative(
                    sections, setting, lambda o, s=setting: defaults.get(o) != defaults.get(s)
                )
                if other:
                    yield Mutant(
                        path, "default-swap", index, line, other, f"{setting} defaults to {other}'s default"
                    )
        if func not in scope:
            continue
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            target = _attr_target(node, sections)
            if target is not None:
                other = _alternative(sections[target[0]], target[1])
                if other:
                    yield Mutant(path, "attr-swap", index, line, other, f"{short(node)} -> .{other}")
        if isinstance(node, ast.Call):
            for k, keyword in enumerate(node.keywords):
                if keyword.arg is not None:
                    yield Mutant(
                        path,
                        "kwarg-drop",
                        index,
                        line,
                        str(k),
                        f"drop {keyword.arg}= in {short(node.func)}(...)",
                    )
            named = [k for k, kw in enumerate(node.keywords) if kw.arg is not None]
            for a, b in itertools.pairwise(named):
                ka, kb = node.keywords[a].arg, node.keywords[b].arg
                yield Mutant(
                    path,
                    "kwarg-swap",
                    index,
                    line,
                    f"{a},{b}",
                    f"swap {ka}= and {kb}= in {short(node.func)}(...)",
                )
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield Mutant(
                path,
                "bool-flip",
                index,
                line,
                "",
                f"{node.value} -> {not node.value} in {short(parent[node])}",
            )
        if isinstance(node, (ast.If, ast.IfExp)):
            yield Mutant(path, "cond-negate", index, line, "", f"not ({short(node.test)})")
        if func not in STMT_SCOPE[path]:
            continue
        statement = isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.ClassDef))
        if statement and not _is_skipped_statement(node):
            yield Mutant(path, "stmt-delete", index, line, "", f"delete `{short(node)}`")


def apply(tree: ast.Module, mutant: Mutant) -> ast.Module:
    tree = copy.deepcopy(tree)
    nodes = list(ast.walk(tree))
    node = nodes[mutant.index]
    if mutant.op == "setting-swap":  # two variables exchange fields: each field is still filled once
        assert isinstance(node, ast.Call) and isinstance(node.args[1], ast.Constant)
        other = next(
            n
            for n in nodes
            if isinstance(n, ast.Call)
            and ast.unparse(n.func) == "Variable"
            and isinstance(n.args[1], ast.Constant)
            and n.args[1].value == mutant.arg
        )
        other.args[1] = ast.Constant(node.args[1].value)
        node.args[1] = ast.Constant(mutant.arg)
    elif mutant.op == "default-swap":
        assert isinstance(node, ast.Call)
        node.args[0] = ast.Constant(mutant.arg)
    elif mutant.op == "attr-swap":
        assert isinstance(node, ast.Attribute)
        node.attr = mutant.arg
    elif mutant.op == "kwarg-drop":
        assert isinstance(node, ast.Call)
        del node.keywords[int(mutant.arg)]
    elif mutant.op == "kwarg-swap":
        assert isinstance(node, ast.Call)
        a, b = (int(x) for x in mutant.arg.split(","))
        node.keywords[a].value, node.keywords[b].value = node.keywords[b].value, node.keywords[a].value
    elif mutant.op == "bool-flip":
        assert isinstance(node, ast.Constant)
        node.value = not node.value
    elif mutant.op == "cond-negate":
        assert isinstance(node, (ast.If, ast.IfExp))
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif mutant.op == "stmt-delete":
        parent = next(p for p in nodes if any(c is node for c in ast.iter_child_nodes(p)))
        for name in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, name, None)
            if isinstance(block, list) and any(s is node for s in block):
                block[[id(s) for s in block].index(id(node))] = ast.Pass()
    else:
        raise ValueError(mutant.op)
    return ast.fix_missing_locations(tree)


def build_tree(dest: Path, tests_rev: str | None) -> Path:
    """A wheel-shaped copy of the package under `dest` (for PYTHONPATH) beside a snapshot of the tests.

    The tests are copied once, at the start (from the work tree, or from git revision `tests_rev`
    to measure an older suite), so editing tests during a run cannot change what it measures.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "otelpipe", dest / "otelpipe", ignore=ignore)
    shutil.copytree(ROOT / "processors", dest / "otelpipe" / "processors", ignore=ignore)
    shutil.copytree(ROOT / "exporters", dest / "otelpipe" / "exporters", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")  # pytest's options
    if tests_rev is None:
        shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    else:
        archive = subprocess.run(
            ["git", "archive", tests_rev, "tests"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_tests(tree_dir: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[bool, str]:
    """True when the selection passes. Stops at the first failure."""
    env = {**os.environ, "PYTHONPATH": str(tree_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    # The pytest script, not `python -m pytest`: -m would put the checkout first on sys.path.
    cmd = [
        str(Path(sys.executable).with_name("pytest")),
        "-q",
        "-x",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        *tests,
    ]
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=tree_dir, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return False, "timeout"
    failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["(no output)"]
    return proc.returncode == 0, (failed[0] if failed else tail[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run mutants whose 'file:line op: description' has this (repeatable)",
    )
    parser.add_argument(
        "--extra-tests", action="append", default=[], help="also run these tests (e.g. to check a survivor)"
    )
    parser.add_argument(
        "--tests",
        action="append",
        default=[],
        help="run only these tests instead of the selection (to check that a new test kills a survivor)",
    )
    parser.add_argument(
        "--tests-rev", help="measure the tests of this git revision instead of the work tree's"
    )
    parser.add_argument(
        "--shard",
        help="K/N: run every N-th mutant from the K-th (1-based), so N processes share a full run",
    )
    parser.add_argument("--budget-min", type=float, default=45.0, help="stop starting mutants after this")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per test run")
    args = parser.parse_args()

    sources = {path: (ROOT / path).read_text() for path in TARGETS}
    trees = {path: ast.parse(text) for path, text in sources.items()}
    sections = _settings_fields(trees["otelpipe/config.py"])
    mutants = [
        m
        for path in TARGETS
        for m in candidates(path, trees[path], sections)
        if not args.only or any(part in m.label for part in args.only)
    ]
    mutants.sort(key=lambda m: ORDER.index(m.op))  # stable: file order within an operator
    if args.shard:
        k, n = (int(x) for x in args.shard.split("/"))
        mutants = mutants[k - 1 :: n]  # interleaved: each shard gets its share of every operator
    if args.list:
        for m in mutants:
            print(m.label)
        print(f"{len(mutants)} mutants")
        return 0

    selection = (*(args.tests or TESTS), *args.extra_tests)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="otelpipe-mutate-") as tmp:
        tree_dir = build_tree(Path(tmp), args.tests_rev)
        for path in TARGETS:  # the round-tripped, unmutated source must pass first
            (tree_dir / path).write_text(ast.unparse(trees[path]))
        where = subprocess.run(
            [
                str(Path(sys.executable).with_name("pytest")),
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "--collect-only",
                "-s",
                str(Path(__file__).with_name("_mutate_where.py")),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(tree_dir)},
            capture_output=True,
            text=True,
            check=False,
        )
        if where.stdout.count(str(tree_dir)) < 3:  # the tests must import the copy, or no mutant is ever seen
            print(f"tests do not import the mutated copy: {where.stdout[-500:]}")
            return 2
        ok, detail = run_tests(tree_dir, selection, args.timeout_s)
        if not ok:
            print(f"baseline fails, nothing measured: {detail}")
            return 2
        print(f"baseline passes ({time.monotonic() - start:.0f}s); {len(mutants)} mutants", flush=True)
        killed: list[Mutant] = []
        survived: list[Mutant] = []
        for n, mutant in enumerate(mutants, 1):
            if time.monotonic() - start > args.budget_min * 60:
                print(f"budget spent: {len(mutants) - n + 1} mutants not run")
                break
            target = tree_dir / mutant.path
            target.write_text(ast.unparse(apply(trees[mutant.path], mutant)))
            try:
                passed, detail = run_tests(tree_dir, selection, args.timeout_s)
            finally:
                target.write_text(ast.unparse(trees[mutant.path]))
            (survived if passed else killed).append(mutant)
            status = "SURVIVED" if passed else "killed  "
            print(
                f"[{n}/{len(mutants)}] {status} {mutant.label}" + ("" if passed else f"  <- {detail}"),
                flush=True,
            )
    ran = len(killed) + len(survived)
    print(f"\nkilled {len(killed)}/{ran} ({time.monotonic() - start:.0f}s)")
    for mutant in survived:
        print(f"survivor: {mutant.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
