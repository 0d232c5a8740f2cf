"""The CTC model of fine-tuned students (and of the teacher)."""
