"""The recipes' plumbing: the Python steps that ``egs/*/run.sh`` and ``egs/TEMPLATE/asr1``'s scripts call.

ESPnet keeps such steps beside its recipe template (``pyscripts/``); here they are modules so that
they are tested and installed with the package.  The public tools (training, decoding, export,
benchmarks, ``transcribe``) are in :mod:`espnet_distill.bin`.
"""
