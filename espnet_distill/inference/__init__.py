"""Running fine-tuned models: loading an exp dir, batched decoding of data dirs, transcription of
recordings, and ONNX Runtime sessions of exported models."""
