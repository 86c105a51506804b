from __future__ import annotations

import base64
import json
import logging
import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otelpipe.processors.json_formatter import JsonFormatter
from otelpipe.processors.log_correlation import install_log_correlation
from otelpipe.processors.redaction import DEFAULT_SECRET_KEYS, RedactingFilter, Redactor, luhn_valid
from otelpipe.processors.request_id import reset_request_id, set_request_id

R = Redactor()
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


def _with_luhn(prefix: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError


# (issuer prefix, length): Visa, Mastercard (both ranges), Mir, Amex, Diners, JCB, Discover, UnionPay, Maestro.
_ISSUERS = [("4", 13), ("4", 16), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("2200", 17)]
_ISSUERS += [("34", 15), ("37", 15), ("36", 14), ("3095", 16), ("35", 16), ("6011", 16), ("62", 19), ("50", 13)]
cards = st.sampled_from(_ISSUERS).flatmap(
    lambda issuer: st.text("0123456789", min_size=issuer[1] - len(issuer[0]) - 1, max_size=issuer[1]).map(
        lambda middle: _with_luhn(issuer[0] + middle[: issuer[1] - len(issuer[0]) - 1])
    )
)
tokens = st.text(_TOKEN_ALPHABET, min_size=20, max_size=60)
passwords = st.text("abcdefghijkmnopqrstuvwxyz0123456789!#$%*", min_size=12, max_size=30)


def _jwt(seed: int) -> str:
    rnd = random.Random(seed)

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    sig = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(30))
    return f"{b64({'alg': 'HS256'})}.{b64({'sub': rnd.random()})}.{sig}"


def _format_card(digits: str, style: int) -> str:
    if style == 0:
        return digits
    sep = " " if style == 1 else "-"
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


secrets = st.one_of(
    tokens.map(lambda t: ("Bearer " + t, t)),
    st.integers(0, 10**9).map(lambda s: (_jwt(s), _jwt(s))),
    st.tuples(cards, st.integers(0, 2)).map(lambda c: (_format_card(*c), _format_card(*c))),
    st.tuples(
        st.sampled_from(["password", "API-Key", "client_secret", "token", "Set-Cookie"]), passwords
    ).map(lambda kv: (f"{kv[0]}={kv[1]}", kv[1])),
)


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=40), after=st.text(max_size=40), secret=secrets)
def test_generated_secrets_never_leak(before, after, secret):
    text, sensitive = secret
    assume(sensitive not in before and sensitive not in after)
    redacted = R.redact_text(f"{before} | {text} | {after}")
    assert sensitive not in redacted
    assert "[REDACTED]" in redacted
    assert R.redact_text(redacted) == redacted


@settings(max_examples=200, deadline=None)
@given(digits=st.integers(13, 19).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)))
def test_luhn_failing_numbers_untouched(digits):
    if luhn_valid(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    for shown in (digits, _format_card(digits, 1)) if len(digits) == 16 else (digits,):
        assert R.redact_text(f"order {shown} shipped") == f"order {shown} shipped"


def test_keys_case_and_separator_insensitive_and_kept():
    data = {
        "Password": "p",
        "X-API-KEY": "k",
        "http.request.header.authorization": ("Bearer x",),
        "db_password": "d",
        "user": "alice",
        "count": 3,
        "nested": {"refresh-token": "r", "note": "Bearer abcdefghijklmnop"},
    }
    out = R.redact_mapping(data)
    assert out["Password"] == out["X-API-KEY"] == out["db_password"] == "[REDACTED]"
    assert out["http.request.header.authorization"] == ("[REDACTED]",)
    assert out["user"] == "alice" and out["count"] == 3
    assert out["nested"] == {"refresh-token": "[REDACTED]", "note": "Bearer [REDACTED]"}
    assert set(out) == set(data)
    assert R.redact_mapping({"user": "alice"}) == {"user": "alice"}


def test_custom_keys_and_replacement():
    import re

    custom = Redactor(frozenset({"ssn"}), [re.compile(r"\d{3}-\d{2}-\d{4}")], replacement="***")
    assert custom.redact_value("SSN", "x") == "***"
    assert custom.redact_text("id 123-45-6789 ssn: 42") == "id *** ssn: ***"
    assert custom.redact_value("password", "kept") == "kept"


def test_filter_masks_message_args_extras_and_exception(captured):
    logger, handler = captured
    handler.addFilter(RedactingFilter(R))
    handler.setFormatter(JsonFormatter())
    secret = "Bearer abcdefghijklmnopqrstuvwxyz"
    logger.info("login password=hunter22 header %s", secret, extra={"api_key": "k-123", "user": "bob"})
    logger.info("params %(token)s", {"token": "t-999", "x": 1})
    try:
        raise RuntimeError("card 4111 1111 1111 1111 declined")
    except RuntimeError:
        logger.exception("payment failed")
    first, second, third = (json.loads(line) for line in handler.lines)
    assert first["message"] == "login password=[REDACTED] header Bearer [REDACTED]"
    assert first["api_key"] == "[REDACTED]" and first["user"] == "bob"
    assert second["message"] == "params [REDACTED]"
    assert "4111" not in third["exception.stacktrace"]
    assert len(handler.records) == 3


def test_filter_never_drops_on_error(captured):
    logger, handler = captured

    class Exploding(Redactor):
        def redact_text(self, text: str) -> str:
            raise RuntimeError("boom")

    handler.addFilter(RedactingFilter(Exploding()))
    logger.info("hello %s", "x")
    assert [r.getMessage() for r in handler.records] == ["hello x"]
    assert logging.getLogger("otelpipe.logs").propagate in (True, False)


def test_hint_gate_covers_every_hint_and_still_masks_each_kind():
    """The one-scan gate in front of the hinted patterns lets through every text one could match."""
    from otelpipe.processors import redaction

    assert redaction._GATE_COVERS_HINTS and redaction.Redactor()._gated
    redactor = redaction.Redactor()
    for text in (
        "auth BEARER abcdefghijklmnop",
        "db postgres://app:hunter2@db:5432/x",
        "key AKIAABCDEFGHIJKLMNOP used",
        "jwt eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
        "gh ghp_" + "a" * 36,
    ):
        assert "[REDACTED]" in redactor.redact_text(text), text
    assert redactor.redact_text("order 12345 paid") == "order 12345 paid"


def test_filter_skips_only_the_correlation_fields_the_factory_stamped(correlation, captured, tracer_provider):
    """Stamped ids, flag and service fields are not re-scanned; anything the app changed still is."""
    logger, handler = captured
    redactor = Redactor()
    handler.addFilter(RedactingFilter(redactor))
    with tracer_provider.get_tracer("t").start_as_current_span("s"):
        logger.info("item %s served", 7)
        scanned = redactor.texts_scanned
        logger.info("item %s served", 8)  # message only: no stamped field, no int arg is scanned
        assert redactor.texts_scanned - scanned == 1

        class Overwrite(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.otelServiceName = "shop password=hunter22"
                record.trace_id = {"token": "t-1"}
                return True

        handler.filters.insert(0, Overwrite())
        logger.info("changed")
    record = handler.records[-1]
    assert record.otelServiceName == "shop password=[REDACTED]"
    assert record.trace_id == {"token": "[REDACTED]"}
    assert handler.records[0].service_name == "shop" and handler.records[0].trace_sampled is True


def test_filter_masks_a_secret_in_the_configured_service_name(captured):
    """Checked per installation: a reconfigured service name is checked again."""
    handle = install_log_correlation("svc")
    try:
        logger, handler = captured
        handler.addFilter(RedactingFilter(Redactor()))
        logger.info("clean")
        install_log_correlation("svc token=s3cr3t-value")  # reconfigures the active installation
        logger.info("one")
        logger.info("two")
    finally:
        handle.uninstall()
    assert handler.records[0].service_name == "svc"
    for record in handler.records[1:]:
        assert record.service_name == "svc token=[REDACTED]"
        assert getattr(record, "service.name") == "svc token=[REDACTED]"


def test_filter_masks_stamped_fields_when_their_key_is_a_configured_secret(correlation, captured):
    logger, handler = captured
    handler.addFilter(RedactingFilter(Redactor(DEFAULT_SECRET_KEYS | {"service_name"})))
    logger.info("x")
    assert handler.records[0].service_name == "[REDACTED]"
    assert getattr(handler.records[0], "service.name") == "shop"


def test_filter_plain_number_args_and_other_args(captured):
    logger, handler = captured
    handler.addFilter(RedactingFilter(Redactor()))
    logger.info("n=%s f=%s none=%s flag=%s", 4111111111111111, 1.5, None, True)
    logger.info("n=%s token %s", 3, "Bearer abcdefghijklmnop")
    first, second = handler.records
    # Number args skip the per-arg pass, but the formatted message is still scanned as a whole.
    assert first.getMessage() == "n=[REDACTED] f=1.5 none=None flag=True"
    assert second.getMessage() == "n=3 token Bearer [REDACTED]"


@settings(max_examples=500, deadline=None)
@given(
    hex_id=st.one_of(
        st.text("0123456789abcdef", min_size=32, max_size=32),
        st.text("0123456789", min_size=32, max_size=32),  # all digits: a card run is 13-19
        st.builds(  # a valid card number at either end, glued to hex letters
            lambda card, first: card.ljust(32, "a") if first else card.rjust(32, "f"),
            cards,
            st.booleans(),
        ),
    )
)
def test_hex_ids_need_no_scan_under_the_default_patterns(hex_id):
    """The claim behind `Redactor.hex_ids_clean`: the full scan leaves every 32-hex-digit id alone."""
    assert len(hex_id) == 32
    assert Redactor()._redact_chunk(hex_id) == hex_id


def test_hex_id_shortcut_is_off_with_custom_patterns(correlation, captured):
    logger, handler = captured
    redactor = Redactor(custom_patterns=[r"[0-9a-f]{32}"])
    assert not redactor.hex_ids_clean and Redactor().hex_ids_clean
    handler.addFilter(RedactingFilter(redactor))
    token = set_request_id("0123456789abcdef0123456789abcdef")
    try:
        logger.info("x")
    finally:
        reset_request_id(token)
    assert handler.records[0].request_id == "[REDACTED]"
    assert redactor.changed_items({"request.id": "0123456789abcdef0123456789abcdef"}) == {
        "request.id": "[REDACTED]"
    }


def test_filter_checks_the_request_id_and_any_app_extra_next_to_the_stamped_fields(
    correlation, captured, tracer_provider
):
    logger, handler = captured
    handler.addFilter(RedactingFilter(Redactor()))
    token = set_request_id("token=abc123")  # a client-chosen id is scanned like any value
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s"):
            logger.info("plain")  # only the correlation fields: the request id alone is checked
            logger.info("extra", extra={"api_key": "k-1", "note": "Bearer abcdefghijklmnop"})
    finally:
        reset_request_id(token)
    plain, extra = handler.records
    assert plain.request_id == "token=[REDACTED]" and extra.request_id == "token=[REDACTED]"
    assert extra.api_key == "[REDACTED]" and extra.note == "Bearer [REDACTED]"
    assert plain.service_name == "shop" and len(plain.trace_id) == 32
