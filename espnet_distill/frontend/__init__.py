"""Student front-ends: ESPnet ``AbsFrontend`` modules chosen by name in YAML."""

from espnet_distill.frontend.wav_cnn import WavCNNFrontend

__all__ = ["WavCNNFrontend"]
