"""Machine instructions per span for a bare SDK span and with REDSpanProcessor, counted by callgrind.

Why: bench/span_end.py times spans, and on a shared 2-core host a busy neighbour moves its RED
overhead by several microseconds between runs; instruction counts do not depend on load, so they
compare two versions of the span path exactly. Each configuration runs twice under valgrind's
callgrind (warm-up + N1 spans, warm-up + N2 spans) and the difference divided by N2 - N1 is the
cost of one span, start-up and imports cancelling out (string hashing is seeded, so reruns agree).
`--old-red PATH` adds a copy of an older `processors/red.py` (e.g. `git show
main~5:processors/red.py > /tmp/red_old.py`) to compare against.

Run: .venv/bin/python bench/span_end_instructions.py [--spans 1000,6000] [--old-red /tmp/red_old.py]
(about a minute per run under valgrind, six runs with --old-red). Needs valgrind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_BENCH = Path(__file__).resolve().parent


def _child(variant: str, spans: int) -> None:  # pragma: no cover - runs under valgrind
    sys.path.insert(0, str(_BENCH))
    import span_end

    from otelpipe.processors import red

    module = red
    if variant.startswith("old:"):
        spec = importlib.util.spec_from_file_location("red_old", variant[4:])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    processor = None if variant == "bare" else module.REDSpanProcessor(module.REDStore())
    tracer = span_end.tracer_with(processor)
    span_end.run_spans(tracer, 1000)  # warm-up: caches, specialised bytecode, the series exists
    span_end.run_spans(tracer, spans)


def _instructions(variant: str, spans: int, workdir: Path) -> int:
    out = workdir / f"callgrind.{len(list(workdir.iterdir()))}"
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            variant,
            str(spans),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # string hashes, hence dict probing, fixed per run
        timeout=1800,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {result.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spans", default="1000,6000", help="N1,N2: spans of the two runs per configuration")
    parser.add_argument("--old-red", help="path of an older red.py to compare with the current one")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    low, high = (int(part) for part in args.spans.split(","))
    variants = ["bare", "red"] + ([f"old:{args.old_red}"] if args.old_red else [])
    per_span: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            counts = [_instructions(variant, spans, Path(tmp)) for spans in (low, high)]
            per_span[variant] = (counts[1] - counts[0]) / (high - low)
    bare = per_span["bare"]
    print(
        f"instructions per span (callgrind, {high - low} spans difference), python {sys.version.split()[0]}"
    )
    for variant, count in per_span.items():
        label = "old red.py" if variant.startswith("old:") else variant
        print(f"  {label:12s} {count:10.0f}  {count / bare:.4f}x bare  (+{count - bare:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
