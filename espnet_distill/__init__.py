"""espnet-distill: distillation of self-supervised speech models for ASR."""

__version__ = "0.1.0"
