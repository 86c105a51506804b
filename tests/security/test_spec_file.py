"""A hostile or broken SLO file costs bounded time and memory and never echoes its content (issue 12, item 3).

Measured before: a 502-byte alias bomb delayed start-up 48 s and took 5.7 GiB, deep nesting raised
RecursionError, a FIFO as the spec never let the app start, a 50 MB spec added 34 s, and a secret
file given as the spec had its first 77 characters printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from otelpipe.incidents.rules import RuleSpecError, load_rules
from otelpipe.slo.check import check_slo_file
from otelpipe.slo.spec import SLOSpecError, load_spec, parse_spec
from otelpipe.slo.spec_file import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES

SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dcTOPSECRET"


def alias_bomb() -> str:
    """The classic 'billion laughs' in YAML: 9 levels of 9 aliases, ~9^9 nodes once expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(f'*{prev}' for _ in range(9))}]")
    return "\n".join(lines) + "\n"


def test_the_alias_bomb_is_a_few_hundred_bytes() -> None:
    assert len(alias_bomb().encode()) <= 520  # the one measured in issue 12 was 502 bytes


def _run(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_alias_bomb_fails_fast_in_little_memory(tmp_path: Path) -> None:
    """Peak RSS of a fresh interpreter loading the bomb, against the same interpreter before it."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    code = f"""
import resource, time
from otelpipe.slo.spec import SLOSpecError, load_spec
from otelpipe.slo.check import check_slo_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    load_spec({str(bomb)!r})
except SLOSpecError as exc:
    print("ERROR", exc)
checked = check_slo_file({str(bomb)!r}, (0.1, 0.5, 1.0))
print("CHECK", len(checked.errors), checked.usable)
print("SECONDS", time.perf_counter() - started)
print("GROWTH_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    out = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert f"more than {MAX_NODES} YAML nodes once aliases are expanded" in out["ERROR"]
    assert out["ERROR"].startswith(f"{bomb}: f (line 6): got more than")  # the field whose value explodes
    assert "lol" not in result.stdout
    assert out["CHECK"] == "1 False"
    assert float(out["SECONDS"]) < 10.0  # generous: measured ~0.01 s; was 48 s
    assert int(out["GROWTH_KIB"]) < 50 * 1024  # was 5.7 GiB


def test_rules_loader_has_the_same_budget(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    with pytest.raises(RuleSpecError, match="once aliases are expanded"):
        load_rules(bomb)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(
        SLOSpecError, match=r"rec.yaml: slos\[0\] \(line 2\): got an alias inside its own anchor"
    ):
        parse_spec("version: otelpipe/v1\nslos: &a [*a]\n", source="rec.yaml")


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_a_spec_error_not_a_recursion_error(opener: str) -> None:
    depth = 20_000
    if opener == "- ":
        text = "".join("  " * i + "-\n" for i in range(200))  # block style: indentation nests
    else:
        text = opener * depth + "1" + ("]" if opener == "[" else "}") * depth
    # libyaml stops at its own limit (1000) first for the deepest flow nesting; both are spec errors.
    with pytest.raises(SLOSpecError, match=f"nesting deeper than {MAX_DEPTH} levels|maximum nesting depth"):
        parse_spec(text, source="deep.yaml")
    shallow_enough = opener * (MAX_DEPTH + 1) + "1" + ("]" if opener == "[" else "}") * (MAX_DEPTH + 1)
    if opener != "- ":
        with pytest.raises(SLOSpecError, match=f"nesting deeper than {MAX_DEPTH} levels"):
            parse_spec(shallow_enough, source="deep.yaml")


def test_nesting_errors_name_the_field_path() -> None:
    text = "version: otelpipe/v1\nslos:\n  - name: x\n    sli: " + "{a: " * 70 + "1" + "}" * 70 + "\n"
    with pytest.raises(
        SLOSpecError, match=r"deep.yaml: slos\[0\]\.sli\.a\.a\.\.\.\.a\.a\.a \(line 4\): got nesting"
    ):
        parse_spec(text, source="deep.yaml")


def test_nesting_through_aliases_counts_too() -> None:
    half = MAX_DEPTH // 2 + 2
    text = f"a: &a {'[' * half}1{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(SLOSpecError, match="nesting deeper than"):
        parse_spec(text, source="deep.yaml")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "slo.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_spec(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10.0)
    if worker.is_alive():  # unblock the reader so the thread can end, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("load_spec blocked on a FIFO")
    assert isinstance(outcome[0], SLOSpecError)
    assert "got a FIFO, expected a regular file" in str(outcome[0])


def test_a_directory_and_a_device_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SLOSpecError, match="got a directory, expected a regular file"):
        load_spec(tmp_path)
    with pytest.raises(SLOSpecError, match="got a character device, expected a regular file"):
        load_spec("/dev/zero")


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as out:
        out.truncate(50 * 1024 * 1024)  # sparse 50 MB: costs no disk, was +34 s of start-up
    with pytest.raises(
        SLOSpecError, match=f"got {50 * 1024 * 1024} bytes, expected at most {MAX_SPEC_BYTES}"
    ):
        load_spec(big)
    with pytest.raises(RuleSpecError, match="expected at most"):
        load_rules(big)


@pytest.mark.parametrize(
    "content",
    [
        SECRET + "\n",
        f"-----BEGIN RSA PRIVATE KEY-----\nMIIEow{SECRET}\n-----END RSA PRIVATE KEY-----\n",
        f"API_KEY={SECRET}\nOTHER=1\n",
        f"- {SECRET}\n- {SECRET}\n",
        f'password: "{SECRET}\n',  # unterminated quote: a YAML error on the secret's line
        f"token: {SECRET}\n\tbad: indentation\n",
        b"\xff\xfe".decode("latin-1") + SECRET,  # not UTF-8
    ],
)
def test_a_secret_file_given_as_the_spec_is_never_echoed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    with pytest.raises(SLOSpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in (SECRET, SECRET[:12], SECRET[-12:], "MIIEow"):
        assert fragment not in message
    checked = check_slo_file(path, (0.1, 0.5, 1.0))
    assert checked.errors and not any(SECRET[:12] in e for e in checked.errors)


def test_a_valid_spec_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: ok, objective: 99.9, sli: {kind: availability}}\n"
    )
    assert [slo.name for slo in load_spec(path).slos] == ["ok"]
