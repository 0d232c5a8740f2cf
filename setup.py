"""Installation script of espnet-distill."""

from setuptools import find_packages, setup

setup(
    name="espnet_distill",
    version="0.1.0",
    description=(
        "ESPnet-style recipes that distill HuBERT-class self-supervised speech "
        "models into small students for CTC speech recognition."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",  # the pinned stack (tools/requirements.txt) is Python 3.11
    packages=find_packages(include=["espnet_distill", "espnet_distill.*"]),
    # Versions are pinned in tools/requirements.txt, which tools/install.sh uses.
    install_requires=[
        "torch",
        "torchaudio",
        "espnet",
        "kaldiio",
        "sentencepiece",
        "pyyaml",
        "soundfile",
        "tqdm",
        "numpy",
        "scipy",
        "scikit-learn",
        "tensorboard",
        "matplotlib",
        # transformers (and its safetensors): Hugging Face teachers and export_hf;
        # onnx, onnxscript and onnxruntime: export_onnx, transcribe and benchmark_deploy
        "transformers",
        "safetensors",
        "onnx",
        "onnxscript",
        "onnxruntime",
    ],
    extras_require={"test": ["pytest", "kaldi-native-fbank"]},
)
