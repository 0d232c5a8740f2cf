"""ESPnet task classes of this project (distillation, CTC fine-tuning) and their trainer."""
