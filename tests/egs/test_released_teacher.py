"""The teacher released with egs/mini_synth/asr1 (made by egs/mini_synth/ssl1): intact, small, loadable, documented."""

import hashlib
import json

import numpy as np
import torch

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.teacher import load_teacher
from tests.conftest import REPO_ROOT

RELEASE = REPO_ROOT / "egs" / "mini_synth" / "asr1" / "pretrained" / "hubert_mini.pt"


def test_the_released_teacher_matches_its_sha256_and_loads_through_the_safe_loader(tiny_corpus):
    recorded = (RELEASE.parent / "hubert_mini.pt.sha256").read_text().split()
    digest = hashlib.sha256(RELEASE.read_bytes()).hexdigest()
    assert recorded == [digest, "hubert_mini.pt"]
    assert RELEASE.stat().st_size <= 20 * 1024 * 1024
    info = json.loads((RELEASE.parent / "hubert_mini.json").read_text())
    assert info["sha256"] == digest and info["made_by"].startswith("./run.sh") and len(info["iterations"]) == 2
    teacher = load_teacher("torchaudio", path=str(RELEASE), sha256=digest)
    assert (teacher.num_layers, teacher.hidden_size) == (info["layers"], info["width"])
    assert sum(p.numel() for p in teacher.model.parameters()) == info["params"]
    utt, spec = next(iter(read_kaldi_map(tiny_corpus["data"] / "dev" / "wav.scp").items()))
    samples, _ = read_audio(utt, spec)
    out = teacher(torch.from_numpy(samples)[None])
    assert out.codeword_logits.shape[-1] == info["codewords"] and len(out.hidden_states) == info["layers"] + 1
    assert all(np.isfinite(h.numpy()).all() for h in out.hidden_states)
