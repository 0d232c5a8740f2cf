"""CTC fine-tuning of distilled students (and of the teacher), and decoding."""
