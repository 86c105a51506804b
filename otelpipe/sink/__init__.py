"""Local OTLP receiver for the demo and tests (`otelpipe sink`)."""

from otelpipe.sink.server import OTLPSink
from otelpipe.sink.store import Received, SinkStore

__all__ = ["OTLPSink", "Received", "SinkStore"]
