"""A Flask app served by gunicorn workers in the fork test; otelpipe comes from `opentelemetry-instrument`."""

import os
import time

from flask import Flask, request

app = Flask(__name__)


@app.get("/work")
def work() -> dict[str, int]:
    time.sleep(min(float(request.args.get("sleep", "0")), 1.0))
    return {"pid": os.getpid()}
