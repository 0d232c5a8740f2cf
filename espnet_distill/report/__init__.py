"""RESULTS.md from the experiment directories alone: its tables, the study and its plots.

- :mod:`~espnet_distill.report.results`: ESPnet's WER and CER tables of every scored set (with each
  model's parameters, fine-tuning set and decoding RTF) and the page around them;
- :mod:`~espnet_distill.report.study`: the summary (one row per model and fine-tuning set, seeds
  pooled) and the paper's comparisons, judged against the seed spread;
- :mod:`~espnet_distill.report.plots`: test error against parameters and against decoding RTF, and
  the distillation loss terms per epoch.

``recipe/make_results`` writes RESULTS.md with them; the scores they read come from
:mod:`espnet_distill.scoring`.
"""
