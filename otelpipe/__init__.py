"""otelpipe: RED metrics from spans, log-trace correlation, SLO burn rates and incidents for the OpenTelemetry SDK.

The public surface is small: `configure()` builds the whole pipeline from the environment (or
from `Settings`), and every piece under `otelpipe.processors` and `otelpipe.exporters` can also
be added by hand to an SDK setup.
"""

from importlib.metadata import PackageNotFoundError, version

from otelpipe.config import ConfigError, Settings, load_settings
from otelpipe.pipeline import Pipeline, configure

try:
    __version__ = version("otelpipe")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["ConfigError", "Pipeline", "Settings", "__version__", "configure", "load_settings"]
