"""espnet-distill: distillation of self-supervised speech models for ASR."""

from espnet_distill import espnet_interop as _espnet_interop

__version__ = "0.1.0"

# ESPnet's ASR task learns this project's components when it is imported (see espnet_interop).
_espnet_interop.install()
