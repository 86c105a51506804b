"""Scenario 8: bad configuration. Garbage in every OTELPIPE_* variable at once, and fuzzed SLO YAML.

tests/test_config.py fuzzes each variable alone; here all of them are bad together, the app still
starts under auto-instrumentation, strict mode stops it with a message naming the variable (never
echoing a secret), and spec/rule parsing only ever raises its own error type, naming where.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelpipe.config import VARIABLES, ConfigError, load_settings
from otelpipe.incidents.rules import RuleSpecError, parse_rules
from otelpipe.slo.spec import SLOSpecError, parse_spec

E2E_APP = Path(__file__).parents[1] / "e2e" / "flask_app.py"
DEMO_SPEC = (Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml").read_text()
RULES = {
    "rules": [
        {"name": "errors", "service": "checkout", "error_rate": {"above": "5%", "min_requests": 100}},
        {
            "name": "latency",
            "service": "checkout",
            "severity": "critical",
            "window": "10m",
            "match": {"span.name": "POST /pay"},
            "labels": {"team": "shop"},
            "latency": {"quantile": 0.95, "above": "2s"},
        },
    ]
}
NAMES = [variable.name for variable in VARIABLES]
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={name: env_text for name in NAMES}))
def test_any_mix_of_values_is_lenient_or_a_config_error_naming_the_variable(env: dict[str, str]) -> None:
    loaded = load_settings(env, strict=False)
    assert {error.variable for error in loaded.errors} <= set(env)
    try:
        load_settings(env, strict=True)
    except ConfigError as error:
        assert error.variable in env
        assert error.variable in str(error)
    else:
        assert not loaded.errors


GARBAGE = "::garbage\u00e9 value;;("


def _garbage_env(otlp_env: Any, sink: Any, **extra: str) -> dict[str, str]:
    values = {name: GARBAGE for name in NAMES if name != "OTELPIPE_STRICT"}
    values["OTELPIPE_STATE_DIR"] = "state"  # any text is a valid path; keep it inside the test's cwd
    return otlp_env(sink, **values, **extra)


@pytest.mark.integration
def test_app_with_garbage_in_every_variable_still_starts_and_serves(
    sink, otlp_env, instrumented_app, wait_until
):
    app = instrumented_app(_garbage_env(otlp_env, sink))
    assert [app.get(f"/hello/g{i}") for i in range(3)] == [200, 200, 200]
    assert app.get("/fail") == 500
    assert wait_until(lambda: sink.store.totals()["traces"] >= 4)
    app.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("OTELPIPE_RED_BUCKETS", "1,0.5", "'1,0.5'"),
        ("OTELPIPE_WEBHOOK_URL", "hooks.example/T0KEN-s3cr3t", "'***'"),
        ("OTELPIPE_SLO_FILE", "/nonexistent/slo.yaml", "'/nonexistent/slo.yaml'"),
    ],
)
def test_strict_mode_fails_at_start_naming_the_variable(variable, value, shown, sink, otlp_env, tmp_path):
    env = otlp_env(sink, OTELPIPE_STRICT="true", **{variable: value})
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    result = subprocess.run(
        [instrument, sys.executable, str(E2E_APP)],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "READY" not in result.stdout
    assert f"{variable}={shown} is invalid" in result.stderr, result.stderr[-2000:]
    if variable == "OTELPIPE_WEBHOOK_URL":
        assert "T0KEN-s3cr3t" not in result.stderr + result.stdout


# --- fuzzed SLO and rule YAML ---

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        ["30d", "5m", "0s", "-1h", "99.9", "101", "150%", "availability", "latency", "{{.window}}"]
    )
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    mutated = copy.deepcopy(document)
    node = mutated
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return mutated


def _parse_spec_only_raises_its_error(text: str) -> None:
    try:
        parse_spec(text, source="fuzz.yaml")
    except SLOSpecError as error:
        assert str(error).startswith("fuzz.yaml: "), error
        assert error.expected


def _parse_rules_only_raises_its_error(document: Any) -> None:
    try:
        parse_rules(document)
    except RuleSpecError as error:
        assert error.path, "a rule error names where it is"
        assert str(error).startswith(f"{error.path}: got ")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_specs_only_raise_spec_errors(data: st.DataObject) -> None:
    document = yaml.safe_load(DEMO_SPEC)
    path = data.draw(st.sampled_from(_paths(document)))
    mutated = _replace(document, path, data.draw(trees))
    _parse_spec_only_raises_its_error(yaml.safe_dump(mutated))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_rules_only_raise_rule_errors(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(RULES)))
    _parse_rules_only_raises_its_error(_replace(RULES, path, data.draw(trees)))


@settings(max_examples=150, deadline=None)
@given(trees)
def test_arbitrary_documents_only_raise_spec_or_rule_errors(tree: Any) -> None:
    _parse_spec_only_raises_its_error(yaml.safe_dump(tree))
    _parse_rules_only_raises_its_error(tree)
    _parse_rules_only_raises_its_error({"rules": tree})


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_spec_errors(text: str) -> None:
    _parse_spec_only_raises_its_error(text)
