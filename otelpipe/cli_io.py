"""What every `otelpipe` subcommand shares at its edges: `-` for stdin/stdout, one error form, exit 2.

Scripts parse stderr and branch on exit codes; one prefix (`otelpipe: error: ...`) and one code
for bad input (2, as argparse uses) let them, where each command had its own wording and a
missing output directory ended in a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from otelpipe.slo.spec_file import MAX_SPEC_BYTES

PREFIX = "otelpipe: error: "
BAD_INPUT = 2
STDIN_NAME = "<stdin>"


class CLIError(Exception):
    """Bad input to a command: reported by `main` as one line on stderr, exit code 2."""


def error(message: str) -> int:
    """Print `message` as the one error line and return the bad-input exit code."""
    print(PREFIX + message.replace("\n", " "), file=sys.stderr)
    return BAD_INPUT


def problem(message: str) -> None:
    """One of several error lines (a spec with many problems), same prefix, no exit code decided."""
    print(PREFIX + message.replace("\n", " "), file=sys.stderr)


@contextlib.contextmanager
def input_path(argument: str) -> Iterator[Path]:
    """The file to read for `argument`; `-` is stdin, copied to a private temporary file.

    The spec readers take paths (bounded reads, FIFO refusal); a temporary copy keeps them one
    code path. Messages should name `display_name(argument)`, not the temporary file.
    """
    if argument != "-":
        yield Path(argument)
        return
    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)  # over the limit: the reader refuses it by size
    with tempfile.TemporaryDirectory(prefix="otelpipe-stdin-") as tmp:
        path = Path(tmp) / "stdin.yaml"
        path.write_bytes(data)
        yield path


def display_name(argument: str) -> str:
    """How messages name an input argument."""
    return STDIN_NAME if argument == "-" else argument


def shown(message: str, path: Path, argument: str) -> str:
    """`message` with the temporary copy of stdin named as `<stdin>`."""
    return message.replace(str(path), display_name(argument)) if argument == "-" else message


def write_output(text: str, output: str | None) -> None:
    """Write `text` to `output`, or stdout when it is absent or `-`; an unwritable file is a CLIError."""
    if not output or output == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"cannot write {output}: {exc.strerror or type(exc).__name__}") from None


def print_json(data: object) -> None:
    """Machine-readable output: indented JSON and a final newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def is_terminal() -> bool:
    """Whether stdout is a terminal (piped output gets full-width plain lines)."""
    try:
        return os.isatty(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # capsys and other stand-ins have no descriptor
        return False
