"""A tiny Flask app with no otelpipe import: instrumented only by `opentelemetry-instrument`."""

import logging
import signal
import sys

from flask import Flask, abort
from werkzeug.serving import make_server

app = Flask(__name__)
log = logging.getLogger("e2e.app")


@app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    log.warning("greeting %s", name)
    return {"hello": name}


@app.get("/fail")
def fail() -> None:
    log.error("about to fail")
    abort(500)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # let atexit flush telemetry
    print(f"READY {server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
