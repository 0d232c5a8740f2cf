"""The benchmarks' library: what ``bin/benchmark`` and ``bin/benchmark_deploy`` measure and write.

- :mod:`~espnet_distill.benchmark.inputs`: what both are given: the ``--model NAME=PATH`` option and
  the utterances of a data dir;
- :mod:`~espnet_distill.benchmark.timing`: real-time factors of passes over the utterances;
- :mod:`~espnet_distill.benchmark.models`: size and CPU speed of front-end + encoder models
  (``benchmark.json``, ``benchmark.md``);
- :mod:`~espnet_distill.benchmark.deploy`: the deployed models, PyTorch and ONNX Runtime fp32 and int8
  (``deploy.json``, ``deploy.md``).
"""
