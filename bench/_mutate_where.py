"""Collected by bench/mutate_wiring.py: prints where pytest imports otelpipe.config from (must be the mutated copy)."""

import otelpipe.config
import otelpipe.pipeline
import otelpipe.processors.red

print("OTELPIPE_FROM", otelpipe.config.__file__, otelpipe.pipeline.__file__, otelpipe.processors.red.__file__)
