"""Scoring with SCTK's sclite, in ESPnet's layout, and the RESULTS.md tables."""
