"""Token lists and tokenizers for CTC fine-tuning (sentencepiece or characters)."""
