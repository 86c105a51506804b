"""A Flask app for the fleet tests: /ok answers 200, /fail answers 500; both say which pid served."""

import os

from flask import Flask

app = Flask(__name__)


@app.get("/ok")
def ok() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/fail")
def fail() -> tuple[dict[str, int], int]:
    return {"pid": os.getpid()}, 500


if __name__ == "__main__":  # one "pod" for the gateway tests: a plain single-process server
    import signal
    import sys

    from werkzeug.serving import make_server

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit exports the last RED
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"READY {server.server_port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()
