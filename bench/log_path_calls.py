"""Python function calls per log record on a real request path, stock distro vs otelpipe (cProfile).

Call counts do not depend on machine load, so they compare log-path changes exactly where timings
on a busy 2-core host cannot. The app is bench/request_cost.py's (Flask + SQLAlchemy, one SELECT,
one log line per request) under `opentelemetry-instrument`, 1 % `parentbased_traceidratio`, OTLP/HTTP
exporters to a closed port (nothing is sent during the run); only the `log.info` call is profiled.
Run: .venv/bin/python bench/log_path_calls.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _app_main() -> None:  # pragma: no cover - runs under opentelemetry-instrument
    import cProfile
    import logging
    import pstats

    from _item_app import fill_items, item_app

    db = os.environ["BENCH_DB"]
    fill_items(db)
    profile: cProfile.Profile | None = None

    def profiled_log_line(log: logging.Logger, item_id: int) -> None:
        if profile is not None:
            profile.enable()
        log.info("item %s served", item_id)
        if profile is not None:
            profile.disable()

    app = item_app(db, profiled_log_line)
    client = app.test_client()
    for i in range(300):
        client.get(f"/item/{i % 100}")
    profile = cProfile.Profile()
    count = int(os.environ["BENCH_REQUESTS"])
    for i in range(count):
        client.get(f"/item/{i % 100}")
    stats = pstats.Stats(profile)
    top = int(os.environ.get("BENCH_TOP", "0"))
    if top:
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][1])  # type: ignore[attr-defined]
        for (path, line, name), (_, ncalls, *_rest) in rows[:top]:
            print(f"    {ncalls / count:6.1f}  {name}  {Path(path).name}:{line}")
    print(f"{stats.total_calls / count:.1f}")


def _calls(otelpipe: bool, requests: int, workdir: Path, top: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="log-path-calls",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.01",
        OTELPIPE_STATE_DIR=str(workdir / "state"),
        BENCH_DB=str(workdir / "items.db"),
        BENCH_REQUESTS=str(requests),
        BENCH_TOP=str(top),
    )
    if otelpipe:
        env.update(OTEL_PYTHON_DISTRO="otelpipe", OTEL_PYTHON_CONFIGURATOR="otelpipe")
    else:
        env.update(OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    out = subprocess.run(
        [instrument, sys.executable, str(Path(__file__).resolve()), "--app"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    return "\n".join(lines[-top - 1 :]) if top else lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=0, help="also list the N most-called functions")
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        _app_main()
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("Python calls per log record (one log.info inside a Flask request, 1 % sampling)")
        print(f"  stock opentelemetry-distro  {_calls(False, args.requests, workdir, args.top)}")
        print(f"  otelpipe defaults           {_calls(True, args.requests, workdir, args.top)}")


if __name__ == "__main__":
    main()
