"""Fleet-wide evaluation: RED streams from many processes merged into one snapshot per service.

`REDStreamMerger` turns OTLP RED points (otelpipe's own or the Collector spanmetrics connector's)
into the cumulative `REDSnapshot` the SLO evaluator and threshold rules read, so one evaluator
serves a whole prefork host (`prefork`) or a whole fleet (`otelpipe gateway`).
"""

from otelpipe.fleet.merger import MergerStats, REDStreamMerger
from otelpipe.fleet.points import REDPoint, decode_request

__all__ = ["MergerStats", "REDPoint", "REDStreamMerger", "decode_request"]
