"""Scoring with SCTK's sclite, in ESPnet's layout (RESULTS.md's tables are in :mod:`espnet_distill.report`)."""
