"""The ONNX Runtime path of transcribe imports only what it needs: not torch, torchaudio or ESPnet.

Each check runs in a process of its own (the test process has them all imported).
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT, python_json

RELEASED = REPO_ROOT / "egs" / "mini_synth" / "asr1" / "pretrained" / "asr_mini_fbank"
HEAVY = ("torch", "torchaudio", "espnet", "espnet2")


def imported_after(code: str) -> set:
    """The top-level packages among :data:`HEAVY` that a fresh interpreter has imported after ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    return set(python_json(probe))


def test_the_onnx_path_modules_import_neither_torch_nor_espnet():
    modules = ("transcribe", "onnx_runtime", "audio", "ctc_search")
    assert imported_after("\n".join(f"import espnet_distill.inference.{m}" for m in modules)) == set()


def transcribe_imports(tmp_path, *argv: str) -> set:
    """What ``transcribe`` imported by the time it exits (it must succeed)."""
    code = (
        "import atexit, json, sys, runpy\n"
        f"atexit.register(lambda: print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})),"
        " file=sys.stderr))\n"
        f"sys.argv = ['transcribe', *{list(argv)!r}]\n"
        "runpy.run_module('espnet_distill.bin.transcribe', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(argv[-1])  # the transcript line
    return set(json.loads(result.stderr.splitlines()[-1]))


@pytest.fixture
def recordings(tmp_path):
    noise = np.random.default_rng(0).standard_normal(32000) * 0.05
    sf.write(tmp_path / "16k.wav", noise, 16000, subtype="PCM_16")
    sf.write(tmp_path / "44k.wav", np.concatenate([noise, noise[:24200]]), 44100, subtype="PCM_16")
    return tmp_path


def test_transcribe_with_an_onnx_model_imports_torch_only_to_resample_and_espnet_only_to_beam_search(recordings):
    onnx = ["--model", str(RELEASED), "--int8", "true"]
    assert transcribe_imports(recordings, *onnx, str(recordings / "16k.wav")) == set()
    assert transcribe_imports(recordings, *onnx, str(recordings / "44k.wav")) == {"torch", "torchaudio"}
    beam = transcribe_imports(recordings, *onnx, "--beam_size", "4", str(recordings / "16k.wav"))
    assert beam == {"torch", "espnet"}  # ESPnet's beam search, not its task machinery (espnet2)


def test_the_commands_that_load_a_fine_tuned_model_do_not_import_espnets_tasks_or_trainer():
    """Decoding a data dir (stage 8), packing and the PyTorch path of transcribe build the model with
    espnet_distill.asr.build: importing espnet2.tasks (its trainer, every model family it registers and
    transformers) took 5 of asr_inference's 8 s of start-up, paid once per decoding job."""
    probe = (
        "import sys, json\n"
        "import espnet_distill.bin.asr_inference, espnet_distill.bin.pack_model, espnet_distill.inference.decode\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('espnet2.tasks', 'espnet2.train.trainer',"
        " 'transformers')))))"
    )
    assert python_json(probe) == []
