"""The distillation model (teacher on the fly, student, heads, losses) and student export."""
