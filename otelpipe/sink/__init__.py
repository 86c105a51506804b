"""Local OTLP receiver for the demo and tests (`otelpipe sink`), and the reusable `OTLPReceiver`."""

from otelpipe.sink.receiver import OTLPReceiver, ReceiverLimits
from otelpipe.sink.server import OTLPSink
from otelpipe.sink.store import Received, SinkStore

__all__ = ["OTLPReceiver", "OTLPSink", "Received", "ReceiverLimits", "SinkStore"]
