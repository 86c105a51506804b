"""`otelpipe demo` as a user runs it: two instrumented services, a burst, an incident that opens and resolves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_opens_and_resolves_an_incident_and_leaves_nothing_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env["COLUMNS"] = "200"
    exe = str(Path(sys.executable).with_name("otelpipe"))
    proc = subprocess.Popen(
        [exe, "demo", "--duration", "20", "--rps", "15"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "error burst injected on payments" in out
    assert "incident    opened critical shop/api-availability" in out
    assert "incident    opened critical shop/orders-stopped" in out  # a metric rule on shop.orders.created
    # saturation: payments slowed and extra clients during the burst pile requests up in the shop
    assert "incident    opened warning  shop/requests-piling-up" in out
    assert "incident  resolved" in out
    summary = out[out.index("demo summary") :]
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in summary.splitlines()
        if line.count("│") == 3
    }
    assert int(rows["sink received spans"]) > 100
    assert int(rows["sink received metric points"]) > 100
    assert int(rows["sink received log records"]) > 50
    assert int(rows["incidents resolved"]) >= int(rows["incidents opened"]) >= 1
    assert rows["processes left behind"] == "0"
    # the RED table came from exported metrics: the order span with its errors
    assert any("order.create" in line and "internal" in line for line in out.splitlines())
    # the two services (started in their own process groups) did not outlive the demo
    pids = [int(m) for m in re.findall(r"\(pid (\d+)\)", out)]
    assert len(pids) == 2
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_ctrl_c_stops_the_demo_and_its_services(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env["COLUMNS"] = "200"
    exe = str(Path(sys.executable).with_name("otelpipe"))
    proc = subprocess.Popen(
        [exe, "demo", "--duration", "60", "--rps", "5"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = ""
    while "(pid" not in first:
        line = proc.stdout.readline()
        assert line, "demo exited before starting its services"
        first += line
    pids = [int(m) for m in re.findall(r"\(pid (\d+)\)", first)]
    assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert "demo summary" in out
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
