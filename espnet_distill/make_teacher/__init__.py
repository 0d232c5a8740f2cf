"""Making teachers: HuBERT's k-means targets, its masked-prediction pretraining and teacher codebooks.

- :mod:`~espnet_distill.make_teacher.kmeans_labels`: HuBERT's targets, k-means clusters of MFCC frames
  (iteration 1) or of a teacher layer (later iterations), one label per 20 ms;
- :mod:`~espnet_distill.make_teacher.pretrain`: the masked-prediction pretraining of a small HuBERT on
  those labels, written in the ``torchaudio`` teacher format;
- :mod:`~espnet_distill.make_teacher.codebook`: k-means codewords of one layer of a teacher without
  HuBERT's codeword head;
- :mod:`~espnet_distill.make_teacher.layer_frames`: the frames of one teacher layer that both fit k-means to.

This side may use the loading side (:mod:`espnet_distill.teacher`); the loading side never uses it.
"""
