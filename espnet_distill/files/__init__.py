"""The files this project writes and reads back, one module each: its names, reader, writer and checks.

- :mod:`~espnet_distill.files.student_dir`: a student (``student.yaml``, ``student.pth``), written by
  distillation and by the teacher's export, read by fine-tuning, the exports and the benchmarks;
- :mod:`~espnet_distill.files.student_source`: ``student_source.json``, a fine-tuning's record of what it
  started from, read by RESULTS.md's study;
- :mod:`~espnet_distill.files.teacher_spec`: ``teacher.yaml`` (``teacher``, ``teacher_conf``), written by the
  teacher stage, read by distillation, the codebook fit and the teacher's export;
- :mod:`~espnet_distill.files.codebook`: a teacher codebook (``codebook.npz``: ``codewords``, ``layer``),
  written by ``bin/teacher_codebook``, read by distillation (``model_conf.codebook``);
- :mod:`~espnet_distill.files.onnx_dir`: an ONNX export directory (``model.onnx``, ``model.int8.onnx``,
  ``tokens.txt``, ``model.json``, ``SHA256SUMS``), written by the ONNX export, read by transcribe's ONNX
  Runtime backend, the deployment benchmark and RESULTS.md.

Every reader and writer of these files goes through these modules, which import nothing of the package
but ``utils``.
"""
