"""Config from the environment: every variable's good and bad values, strict mode, unknown names, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelpipe.config import VARIABLES, VARIABLES_BY_NAME, ConfigError, Settings, load_settings, service_name

# variable -> (a good raw value, the value it parses to, a bad raw value, a phrase of the expected form)
CASES: dict[str, tuple[str, object, str, str]] = {
    "OTELPIPE_ENABLED": ("false", False, "maybe", "true or false"),
    "OTELPIPE_STRICT": ("0", False, "2", "true or false"),
    "OTELPIPE_STATE_DIR": ("/var/lib/otelpipe", "/var/lib/otelpipe", None, None),
    "OTELPIPE_RED_ENABLED": ("no", False, "nein", "true or false"),
    "OTELPIPE_RED_DIMENSIONS": ("user.tier, region", ("user.tier", "region"), "a b", "attribute names"),
    "OTELPIPE_RED_EXCLUDE_DIMENSIONS": (
        "http.response.status_code",
        ("http.response.status_code",),
        "x;y",
        "attribute names",
    ),
    "OTELPIPE_RED_SPAN_KINDS": ("SERVER,internal", ("server", "internal"), "server,weird", "server, client"),
    "OTELPIPE_RED_BUCKETS": ("0.1, 0.5,2", (0.1, 0.5, 2.0), "0.5,0.1", "ascending"),
    "OTELPIPE_RED_UNIT": ("S", "s", "us", "one of ms, s"),
    "OTELPIPE_RED_CARDINALITY_LIMIT": ("500", 500, "0", "an integer >= 1"),
    "OTELPIPE_RED_RECORD_UNSAMPLED_ENABLED": ("off", False, "sometimes", "true or false"),
    "OTELPIPE_FAST_SAMPLER_ENABLED": ("false", False, "fast", "true or false"),
    "OTELPIPE_RED_EXEMPLARS_ENABLED": ("1", True, "yes please", "true or false"),
    "OTELPIPE_SERVICE_GRAPH_ENABLED": ("false", False, "?", "true or false"),
    "OTELPIPE_LOG_CORRELATION_ENABLED": ("false", False, "nope", "true or false"),
    "OTELPIPE_LOG_FORMAT": ("JSON", "json", "xml", "one of unchanged, json, ecs"),
    "OTELPIPE_ACCESS_LOG_ENABLED": ("true", True, "loud", "true or false"),
    "OTELPIPE_REDACT_ENABLED": ("false", False, "partly", "true or false"),
    "OTELPIPE_REDACT_KEYS": ("ssn,pin", ("ssn", "pin"), "s s n", "attribute names"),
    "OTELPIPE_REDACT_PATTERNS": (
        r"sk_live_\w+;;acct-\d{4,8}",
        (r"sk_live_\w+", r"acct-\d{4,8}"),
        "([a-",
        "regular expressions",
    ),
    "OTELPIPE_SLO_FILE": ("slo.yaml", "slo.yaml", None, None),
    "OTELPIPE_SLO_INTERVAL": ("250ms", 0.25, "ten seconds", "a duration"),
    "OTELPIPE_SLO_TIME_SCALE": ("60", 60.0, "-1", "a number > 0"),
    "OTELPIPE_SLO_EVALUATION": ("gateway", "gateway", "master", "one of host, process, gateway"),
    "OTELPIPE_PREFORK_PUSH_INTERVAL": ("500ms", 0.5, "often", "a duration"),
    "OTELPIPE_STREAM_STALE_AFTER": ("10m", 600.0, "-1s", "a duration"),
    "OTELPIPE_STATE_SAVE_INTERVAL": ("2s", 2.0, "often", "a duration"),
    "OTELPIPE_SYSTEM_METRICS_ENABLED": ("false", False, "maybe", "true or false"),
    "OTELPIPE_INCIDENT_HOLD_DOWN": ("5m", 300.0, "5 minutes", "a duration"),
    "OTELPIPE_INCIDENT_RENOTIFY": ("4h", 14400.0, "0s", "a duration"),
    "OTELPIPE_TRACE_URL_TEMPLATE": (
        "http://jaeger:16686/trace/{trace_id}",
        "http://jaeger:16686/trace/{trace_id}",
        "http://jaeger:16686/trace/",
        "{trace_id}",
    ),
    "OTELPIPE_ALERTMANAGER_URL": (
        "http://127.0.0.1:9093",
        "http://127.0.0.1:9093",
        "am:9093",
        "http:// or https:// URL",
    ),
    "OTELPIPE_PAGERDUTY_ROUTING_KEY": ("R0UT1NGKEY", "R0UT1NGKEY", None, None),
    "OTELPIPE_PAGERDUTY_URL": (
        "http://127.0.0.1:1/v2/enqueue",
        "http://127.0.0.1:1/v2/enqueue",
        "ftp://x",
        "URL",
    ),
    "OTELPIPE_WEBHOOK_URL": (
        "https://hooks.example/T0K3N",
        "https://hooks.example/T0K3N",
        "hooks.example",
        "URL",
    ),
    "OTELPIPE_WEBHOOK_FORMAT": ("slack", "slack", "teams", "one of json, slack"),
    "OTELPIPE_CONSOLE_NOTIFIER_ENABLED": ("true", True, "tty", "true or false"),
    "OTELPIPE_NOTIFY_TIMEOUT": ("2s", 2.0, "-2s", "a duration"),
    "OTELPIPE_NOTIFY_QUEUE_SIZE": ("10", 10, "many", "an integer >= 1"),
    "OTELPIPE_SHUTDOWN_TIMEOUT": ("3s", 3.0, "forever", "a duration"),
}


def test_every_variable_has_a_case():
    assert set(CASES) == {v.name for v in VARIABLES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_good_value_parses(name):
    good, expected, _, _ = CASES[name]
    loaded = load_settings({name: good})
    assert loaded.errors == ()
    assert loaded.values[name] == expected


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case[2] is not None))
def test_bad_value_names_variable_value_and_form(name):
    _, _, bad, phrase = CASES[name]
    loaded = load_settings({name: bad})
    assert len(loaded.errors) == 1
    error = loaded.errors[0]
    assert error.variable == name
    message = str(error)
    assert name in message
    if not VARIABLES_BY_NAME[name].secret:
        assert repr(bad) in message
    if phrase:
        assert phrase in message
    # lenient mode: the default stands in for the bad value, so the app still starts
    assert loaded.values[name] == VARIABLES_BY_NAME[name].default


def test_strict_mode_raises_the_first_error():
    with pytest.raises(ConfigError, match="OTELPIPE_RED_CARDINALITY_LIMIT='lots'"):
        load_settings({"OTELPIPE_STRICT": "true", "OTELPIPE_RED_CARDINALITY_LIMIT": "lots"})
    with pytest.raises(ConfigError):
        Settings.from_env({"OTELPIPE_SLO_INTERVAL": "soon"})


def test_unknown_otelpipe_variable_is_reported():
    loaded = load_settings({"OTELPIPE_RED_BUCKET": "1,2"})
    assert [e.variable for e in loaded.errors] == ["OTELPIPE_RED_BUCKET"]


def test_secret_values_are_not_echoed():
    loaded = load_settings({"OTELPIPE_WEBHOOK_URL": "hooks.example/secret-token-123"})
    assert "secret-token-123" not in str(loaded.errors[0])


def test_settings_are_built_from_values():
    settings = load_settings(
        {"OTELPIPE_RED_CARDINALITY_LIMIT": "42", "OTELPIPE_SLO_INTERVAL": "1m", "OTELPIPE_LOG_FORMAT": "ecs"}
    ).settings
    assert settings.red.cardinality_limit == 42
    assert settings.slo.interval_s == 60.0
    assert settings.logs.format == "ecs"
    assert (
        settings
        == load_settings(
            {
                "OTELPIPE_RED_CARDINALITY_LIMIT": "42",
                "OTELPIPE_SLO_INTERVAL": "60s",
                "OTELPIPE_LOG_FORMAT": "ECS",
            }
        ).settings
    )


def test_defaults_match_settings_dataclass_defaults():
    assert load_settings({}).settings == Settings()


def test_service_name_resolution_order():
    assert service_name({"OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}) == "a"
    assert service_name({"OTEL_RESOURCE_ATTRIBUTES": "team=x, service.name=b"}) == "b"
    assert service_name({}) == "unknown_service"


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CASES)), raw=st.text(max_size=40))
def test_any_value_gives_a_value_or_a_config_error_naming_the_variable(name, raw):
    loaded = load_settings({name: raw})
    for error in loaded.errors:
        assert isinstance(error, ConfigError)
        assert error.variable == name
    with pytest.raises(ConfigError) if loaded.errors else _nullcontext():
        load_settings({name: raw}, strict=True)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_every_settings_field_is_filled_by_exactly_one_variable() -> None:
    """One declaration per setting: the table names the field, the dataclasses take its default from it."""
    from dataclasses import MISSING, fields

    declared: list[str] = []
    for f in fields(Settings):
        if f.default_factory is not MISSING:
            declared += [f"{f.name}.{inner.name}" for inner in fields(f.default_factory())]
        else:
            declared.append(f.name)
    settings_of_variables = [v.setting for v in VARIABLES]
    assert sorted(settings_of_variables) == sorted(declared)
    assert len(set(settings_of_variables)) == len(settings_of_variables)


def test_settings_built_in_code_start_from_the_variables_defaults() -> None:
    from_env = load_settings({}).settings
    assert Settings() == from_env


def test_durations_take_one_grammar_with_a_unit() -> None:
    """Variables, specs and the CLI share otelpipe.slo.durations: `1h30m` works, a bare number is refused."""
    loaded = load_settings({"OTELPIPE_SLO_INTERVAL": "1m30s", "OTELPIPE_NOTIFY_TIMEOUT": "5"})
    assert loaded.settings.slo.interval_s == 90.0
    assert [e.variable for e in loaded.errors] == ["OTELPIPE_NOTIFY_TIMEOUT"]
    assert "with a unit" in loaded.errors[0].expected


def test_zero_hold_down_is_allowed_other_durations_are_positive() -> None:
    loaded = load_settings({"OTELPIPE_INCIDENT_HOLD_DOWN": "0s", "OTELPIPE_SLO_INTERVAL": "0s"})
    assert loaded.settings.incidents.hold_down_s == 0.0
    assert [e.variable for e in loaded.errors] == ["OTELPIPE_SLO_INTERVAL"]


RENAMED = {old: v.name for v in VARIABLES for old in v.deprecated_names}


def test_booleans_are_named_one_way() -> None:
    """Every switch ends in _ENABLED, except the master switch and strict mode (modes, not features)."""
    switches = [v.name for v in VARIABLES if isinstance(v.default, bool)]
    assert [n for n in switches if not n.endswith("_ENABLED")] == ["OTELPIPE_STRICT"]
    assert RENAMED["OTELPIPE_SERVICE_GRAPH"] == "OTELPIPE_SERVICE_GRAPH_ENABLED"
    assert RENAMED["OTELPIPE_REDACT"] == "OTELPIPE_REDACT_ENABLED"


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_old_name_is_read_and_reported_deprecated(old: str) -> None:
    new = RENAMED[old]
    default = VARIABLES_BY_NAME[new].default
    flipped = "false" if default else "true"
    loaded = load_settings({old: flipped}, strict=True)  # deprecated, not an error, even in strict mode
    assert loaded.values[new] is (not default)
    assert loaded.errors == ()
    assert loaded.deprecations == (f"{old} is deprecated, use {new} (read for now)",)
    assert loaded.sources[new] == old
    # the new name alone: no deprecation
    loaded = load_settings({new: flipped})
    assert loaded.values[new] is (not default) and loaded.deprecations == () and loaded.errors == ()
    # both set: the new name wins and the old one is named as ignored
    loaded = load_settings({new: "true" if default else "false", old: flipped})
    assert loaded.values[new] is default
    assert loaded.deprecations == (f"{old} is deprecated and ignored: {new} is set and wins",)
    # a bad value under the old name names the old name
    loaded = load_settings({old: "perhaps"})
    assert [e.variable for e in loaded.errors] == [old]


def test_old_name_reaches_the_setting() -> None:
    assert load_settings({"OTELPIPE_SERVICE_GRAPH": "false"}).settings.red.service_graph is False
    assert load_settings({"OTELPIPE_REDACT": "false"}).settings.redaction.enabled is False
    both = {"OTELPIPE_REDACT_ENABLED": "true", "OTELPIPE_REDACT": "false"}
    assert load_settings(both).settings.redaction.enabled is True
