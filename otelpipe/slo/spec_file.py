"""Read the SLO/rules file so that no file, hostile or broken, can cost the host more than a bounded amount.

The spec is read at start-up on the application's own thread, so everything is capped before it
is touched: only a regular file (a FIFO or device would block or never end), at most
`MAX_SPEC_BYTES`, YAML composed with a depth limit and a budget on nodes counted as if every
alias were expanded (a 502-byte alias bomb otherwise expands to billions of nodes in whatever
walks or prints it), recursive aliases refused. Errors name the file and a line, never a value or
the file's content: a secret file given as the spec by mistake must not end up in the logs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

#: Largest spec file read; real specs are a few KiB (a 50 MB file cost 34 s of start-up).
MAX_SPEC_BYTES = 1 << 20
#: Most YAML nodes per file, each alias counted as the whole subtree it stands for.
MAX_NODES = 100_000
#: Deepest nesting of mappings and sequences (aliases included); deeper raised RecursionError.
MAX_DEPTH = 64


class Plain(str):
    """A description shown as is: error classes that `repr()` their value print it without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class SpecFileError(ValueError):
    """The file cannot be read as a spec at all; names the file, where (a line) and what was expected."""

    def __init__(self, source: str, where: str, found: str, expected: str) -> None:
        self.source = source
        self.where = where
        self.found = Plain(found)
        self.expected = expected
        super().__init__(f"{source}: {where or '<top>'}: got {found}, expected {expected}")


def read_spec_text(path: str | Path) -> str:
    """The text of the regular file at `path`, refusing anything else or anything over `MAX_SPEC_BYTES`.

    Opened with O_NONBLOCK and checked with fstat on the open descriptor (no race with a swap),
    so a FIFO neither blocks the open nor the read. Symlinks are followed: ConfigMap mounts are
    symlinks.
    """
    source = str(path)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SpecFileError(
            source, "", Plain(exc.strerror or type(exc).__name__), "a readable file"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecFileError(source, "", f"a {_file_kind(info.st_mode)}", "a regular file")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecFileError(source, "", f"{info.st_size} bytes", f"at most {MAX_SPEC_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SPEC_BYTES:  # the file may grow after fstat
            chunk = os.read(fd, MAX_SPEC_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_SPEC_BYTES:
            raise SpecFileError(
                source, "", f"more than {MAX_SPEC_BYTES} bytes", f"at most {MAX_SPEC_BYTES} bytes"
            )
    except OSError as exc:
        raise SpecFileError(source, "", exc.strerror or type(exc).__name__, "a readable file") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecFileError(source, f"line {line}", "bytes that are not UTF-8", "a UTF-8 text file") from None


def load_documents(text: str, source: str) -> list[Any]:
    """The non-empty YAML documents of `text`, each a mapping (or a list of mappings, as OpenSLO
    tools write several objects), within the depth and node budgets."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecFileError(source, "", f"{len(text)} characters", f"at most {MAX_SPEC_BYTES} characters")
    loader = _Loader(text)
    documents: list[Any] = []
    try:
        used = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            used += _Budget(source, MAX_NODES - used).measure(node)
            document = loader.construct_document(node)
            if document is None:
                continue
            # A list of mappings is the OpenSLO SDK's "sequence of objects" form.
            is_sequence = isinstance(document, list) and all(isinstance(d, Mapping) for d in document)
            if not isinstance(document, Mapping) and not is_sequence:
                raise SpecFileError(
                    source,
                    _line(node),
                    f"a YAML {_yaml_kind(document)}",
                    "a mapping (a native spec or OpenSLO documents)",
                )
            documents.append(document)
    except _TooMany as exc:
        raise SpecFileError(
            source, exc.where, f"more than {MAX_NODES} YAML nodes", f"at most {MAX_NODES} nodes"
        ) from None
    except _TooDeep as exc:
        raise SpecFileError(
            source, exc.where, f"nesting deeper than {MAX_DEPTH} levels", f"at most {MAX_DEPTH} levels"
        ) from None
    except yaml.MarkedYAMLError as exc:
        # Only the problem and the line: str(exc) would quote a snippet of the file.
        where = f"line {exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise SpecFileError(source, where, exc.problem or type(exc).__name__, "valid YAML") from None
    except yaml.YAMLError as exc:
        raise SpecFileError(source, "", type(exc).__name__, "valid YAML") from None
    finally:
        loader.dispose()
    return documents


class _TooDeep(Exception):
    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


class _TooMany(_TooDeep):
    pass


class _LimitedComposer(Composer, SafeConstructor, Resolver):
    """PyYAML's composer and safe constructor, refusing nesting past MAX_DEPTH and more than MAX_NODES.

    Both are checked while composing, so a huge or deep file stops early instead of being built
    first (and before Python's recursion limit turns deep nesting into a RecursionError).
    """

    def __init__(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._path: list[_Segment] = []  # where the node being composed sits, for error messages
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # The composer passes a sequence item's position, a mapping value's key node, None for a key.
        self._path.append(
            index.value if isinstance(index, ScalarNode) else index if isinstance(index, int) else None
        )
        self._nodes += 1
        try:
            if len(self._path) > MAX_DEPTH:
                raise _TooDeep(_where(self._path, self.peek_event()))  # type: ignore[attr-defined]
            if self._nodes > MAX_NODES:
                raise _TooMany(_where(self._path, self.peek_event()))  # type: ignore[attr-defined]
            return super().compose_node(parent, index)
        finally:
            self._path.pop()


try:  # libyaml's parser makes the events ~5x faster than pure Python; composing stays ours
    from yaml._yaml import CParser

    class _Loader(CParser, _LimitedComposer):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _LimitedComposer.__init__(self)

        # CParser composes natively (no limits); take the composer's methods instead.
        check_node = Composer.check_node
        get_node = Composer.get_node
        get_single_node = Composer.get_single_node

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _LimitedComposer):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _LimitedComposer.__init__(self)


class _Budget:
    """Counts a composed document's nodes as if aliases were expanded, in time linear in the file."""

    def __init__(self, source: str, allowed: int) -> None:
        self._source = source
        self._allowed = allowed
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
        self._open: set[int] = set()

    def measure(self, root: Node) -> int:
        return self._measure(root, [])[0]

    def _measure(self, node: Node, path: list[_Segment]) -> tuple[int, int]:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self._open:
            raise SpecFileError(
                self._source, _where(path, node), "an alias inside its own anchor", "no recursive aliases"
            )
        children: list[tuple[_Segment, Node]] = []
        if isinstance(node, SequenceNode):
            children = list(enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                children.append((None, key))
                children.append((key.value if isinstance(key, ScalarNode) else None, value))
        self._open.add(id(node))
        size, height = 1, 1
        for segment, child in children:
            path.append(segment)
            child_size, child_height = self._measure(child, path)
            path.pop()
            size += child_size
            height = max(height, child_height + 1)
            if size > self._allowed:
                raise SpecFileError(
                    self._source,
                    _where(path, node),
                    f"more than {MAX_NODES} YAML nodes once aliases are expanded",
                    f"at most {MAX_NODES} nodes",
                )
            if height > MAX_DEPTH:
                raise _TooDeep(_where(path, node))
        self._open.discard(id(node))
        self._sizes[id(node)] = (size, height)
        return size, height


_Segment = str | int | None


def _where(path: list[_Segment], marked: Any) -> str:
    """`slos[2].sli (line 7)`: the field path the way spec errors spell it, keys cut to 40 characters."""
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif isinstance(segment, str):
            key = segment if len(segment) <= 40 else segment[:37] + "..."
            parts.append(f".{key}" if parts else key)
    if len(parts) > 8:  # a deep path: its start and its end say where
        parts = [*parts[:5], "...", *parts[-3:]]
    text = "".join(parts)
    line = _line(marked)
    return f"{text} ({line})" if text and line else text or line


def _line(marked: Any) -> str:
    mark = getattr(marked, "start_mark", None)
    return f"line {mark.line + 1}" if mark is not None else ""


def _yaml_kind(value: object) -> str:
    if isinstance(value, str):
        return f"string of {len(value)} characters"
    if isinstance(value, list):
        return f"sequence of {len(value)} items"
    return type(value).__name__


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"
