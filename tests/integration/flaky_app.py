"""A tiny Flask app whose `/work` endpoint fails on demand: the injected error burst of the SLO tests.

No otelpipe import: it is instrumented only by `opentelemetry-instrument`. `POST /admin/errors`
with a body such as `1.0` sets the fraction of `/work` requests that answer 500; admin requests are
on another route, outside the SLO's selector.
"""

import random
import signal
import sys
import threading

from flask import Flask, abort, request
from werkzeug.serving import make_server

app = Flask(__name__)
_state = {"error_rate": 0.0}
_lock = threading.Lock()


@app.get("/work")
def work() -> dict[str, bool]:
    with _lock:
        rate = _state["error_rate"]
    if rate > 0 and random.random() < rate:
        abort(500)
    return {"ok": True}


@app.post("/admin/errors")
def set_error_rate() -> dict[str, float]:
    rate = float(request.get_data(as_text=True) or "0")
    with _lock:
        _state["error_rate"] = min(max(rate, 0.0), 1.0)
    return {"error_rate": _state["error_rate"]}


def main() -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # let atexit flush telemetry
    print(f"READY {server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
