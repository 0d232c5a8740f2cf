"""The files this project writes and reads back, one module each: its names, reader, writer and checks.

- :mod:`~espnet_distill.files.student_dir`: a student (``student.yaml``, ``student.pth``), written by
  distillation and by the teacher's export, read by fine-tuning, the exports and the benchmarks;
- :mod:`~espnet_distill.files.student_source`: ``student_source.json``, a fine-tuning's record of what it
  started from, read by RESULTS.md's study.

Every reader and writer of these files goes through these modules, which import nothing of the package
but ``utils``.
"""
