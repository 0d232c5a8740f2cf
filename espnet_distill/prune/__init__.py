"""Structured pruning while distilling (DPHuBERT): HardConcrete gates on a student copied from the teacher,
the expected size they give, and the physical pruning of the gated units."""
