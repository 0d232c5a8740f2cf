"""SUPERB-style evaluation of frozen upstreams: a teacher or student is frozen, a learnable
softmax-weighted sum of all its hidden layers feeds a small downstream trained with CTC.

- :mod:`~espnet_distill.superb.upstream`: the frozen upstream of a student dir or a teacher spec
  (or a student's structure with random weights, the sanity floor) and its hidden states;
- :mod:`~espnet_distill.superb.featurizer`: the ESPnet front-end of the weighted layer sum
  (``frontend: upstream`` in a fine-tuning config), and its learnt layer weights.
"""
