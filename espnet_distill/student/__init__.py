"""Student encoders, presets scaled to the teacher, and prediction heads."""
