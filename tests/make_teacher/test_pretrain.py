"""HuBERT iteration-1 targets and pretraining at a tiny size on the tiny corpus."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from espnet_distill.bin import hubert_kmeans
from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.make_teacher.pretrain import LabelledAudio, PretrainConfig, num_model_frames, pretrain
from espnet_distill.teacher import load_teacher
from espnet_distill.utils.progress import read_progress

TINY = dict(
    conv_channels=16,
    encoder_layers=1,
    encoder_dim=32,
    encoder_heads=2,
    encoder_ffn=64,
    pos_conv_kernel=8,
    pos_conv_groups=2,
    final_dim=16,
    dropout=0.0,
    batch_seconds=30.0,
    crop_seconds=3.0,
    lr=3e-3,
    warmup_steps=3,
    valid_interval=10,
    max_steps=30,
)


@pytest.fixture(scope="module")
def kmeans_dir(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("kmeans")
    data = tiny_corpus["data"]
    hubert_kmeans.main(
        [
            "--fit_data",
            str(data / "train"),
            "--data_dirs",
            str(data / "train"),
            str(data / "dev"),
            "--out_dir",
            str(out),
            "--num_clusters",
            "8",
        ]
    )
    return out


def test_one_label_per_20ms_frame(tiny_corpus, kmeans_dir):
    for name in ("train", "dev"):
        wav_scp = read_kaldi_map(tiny_corpus["data"] / name / "wav.scp")
        labels = read_kaldi_map(kmeans_dir / name / "labels")
        assert list(labels) == list(wav_scp)
        for utt, spec in wav_scp.items():
            samples, _ = read_audio(utt, spec)
            values = [int(v) for v in labels[utt].split()]
            assert len(values) == num_model_frames(len(samples)) == 1 + (len(samples) - 400) // 320
            assert min(values) >= 0 and max(values) < 8
    summary = json.loads((kmeans_dir / "summary.json").read_text())
    assert summary["num_clusters"] == 8 and 1 / 8 <= summary["dev"]["majority_rate"] < 1


def test_pretraining_lowers_the_loss_and_writes_a_teacher(tiny_corpus, kmeans_dir, tmp_path):
    data = tiny_corpus["data"]
    train = LabelledAudio(data / "train", kmeans_dir / "train" / "labels")
    config = PretrainConfig(**TINY)
    # Killed after 12 steps, then resumed: it finishes with the planned number of steps.
    partial = pretrain(train, train, 8, config, tmp_path, stop_after=12)
    assert partial == {"step": 12, "finished": False}
    assert not (tmp_path / "teacher.pt").exists()
    progress = read_progress(tmp_path)  # what the console's progress shows: not done, out of 30 steps
    assert progress.total == 30 and 0 < progress.step <= 12 and not progress.done
    with pytest.raises(ValueError, match=r"checkpoint.pt was written with encoder_dim=32, now 48"):
        pretrain(train, train, 8, PretrainConfig(**{**TINY, "encoder_dim": 48}), tmp_path)
    results = pretrain(train, train, 8, config, tmp_path)
    assert results["finished"] and results["step"] == 30
    progress = read_progress(tmp_path)
    assert (progress.step, progress.total, progress.run_start_step, progress.done) == (30, 30, 13, True)
    history = json.loads((tmp_path / "results.json").read_text())
    valid = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["history"]
    losses = [h["loss"] for h in valid if h["type"] == "valid"]
    assert [h["step"] for h in valid if h["type"] == "valid"] == [0, 10, 20, 30]
    assert losses[-1] < losses[0] - 0.1
    assert history["valid_loss"] == losses[-1]

    teacher = load_teacher("torchaudio", path=str(tmp_path / "teacher.pt"))
    assert teacher.num_layers == 1 and teacher.has_codewords
    utt, spec = next(iter(read_kaldi_map(data / "dev" / "wav.scp").items()))
    samples, _ = read_audio(utt, spec)
    out = teacher(torch.from_numpy(samples)[None])
    labels = read_kaldi_map(kmeans_dir / "dev" / "labels")[utt].split()
    assert out.codeword_logits.shape == (1, len(labels), 8)
    assert [h.shape for h in out.hidden_states] == [(1, len(labels), 32)] * 2
    assert np.isfinite(out.codeword_logits.numpy()).all()


def test_iteration_2_clusters_a_layer_of_the_iteration_1_teacher(tiny_corpus, kmeans_dir, tmp_path):
    """HuBERT's second iteration: targets from k-means of the first model's layer, one per frame, then pretraining on them."""
    data = tiny_corpus["data"]
    train = LabelledAudio(data / "train", kmeans_dir / "train" / "labels")
    pretrain(train, train, 8, PretrainConfig(**{**TINY, "max_steps": 10}), tmp_path / "iter1")
    iter2 = tmp_path / "kmeans_iter2"
    hubert_kmeans.main(
        [
            "--fit_data",
            str(data / "train"),
            "--data_dirs",
            str(data / "train"),
            str(data / "dev"),
            "--out_dir",
            str(iter2),
            "--num_clusters",
            "6",
            "--teacher",
            "torchaudio",
            "--teacher_path",
            str(tmp_path / "iter1" / "teacher.pt"),
            "--layer",
            "1",
        ]
    )
    summary = json.loads((iter2 / "summary.json").read_text())
    assert summary["num_clusters"] == 6 and summary["features"].endswith("teacher.pt layer 1")
    teacher = load_teacher("torchaudio", path=str(tmp_path / "iter1" / "teacher.pt"))
    first = {}
    for name in ("train", "dev"):
        mfcc_labels = read_kaldi_map(kmeans_dir / name / "labels")
        labels = read_kaldi_map(iter2 / name / "labels")
        assert list(labels) == list(mfcc_labels)
        assert all(len(labels[u].split()) == len(mfcc_labels[u].split()) for u in labels)  # one per frame, as before
        first.update(labels)
    # The labels are the nearest centroid of the teacher's layer-1 frames.
    import pickle

    with open(iter2 / "kmeans.pkl", "rb") as f:  # written by this test: trusted
        kmeans = pickle.load(f)
    utt, spec = next(iter(read_kaldi_map(data / "dev" / "wav.scp").items()))
    samples, _ = read_audio(utt, spec)
    frames = teacher(torch.from_numpy(samples)[None]).hidden_states[1][0].numpy()
    assert first[utt].split() == [str(c) for c in kmeans.predict(frames)]
    relabelled = LabelledAudio(data / "train", iter2 / "train" / "labels")
    again = pretrain(relabelled, relabelled, 6, PretrainConfig(**{**TINY, "max_steps": 4}), tmp_path / "iter2")
    assert (
        again["finished"]
        and load_teacher("torchaudio", path=str(tmp_path / "iter2" / "teacher.pt")).label_embeddings.shape[0] == 6
    )
    with pytest.raises(SystemExit, match="go together"):
        hubert_kmeans.main(["--fit_data", str(data / "train"), "--out_dir", str(tmp_path / "x"), "--layer", "1"])


def test_the_fast_logits_give_torchaudios_loss_and_gradients(tiny_corpus, kmeans_dir):
    """One matmul over the codewords is the same cross entropy as torchaudio's [positive, negatives] logits."""
    from torchaudio.models import hubert_pretrain_model

    from espnet_distill.make_teacher.pretrain import hubert_logits

    data = tiny_corpus["data"]
    train = LabelledAudio(data / "train", kmeans_dir / "train" / "labels")
    rng = random.Random(0)
    waves, lengths, labels = train.collate(train.batches(20.0, 3.0, rng)[0], 3.0, rng)
    torch.manual_seed(0)
    model = hubert_pretrain_model(**PretrainConfig(**{**TINY, "unmasked_weight": 0.5}).model_kwargs(8)).train()
    torch.manual_seed(5)
    logit_m, logit_u, penalty = model(waves, labels, lengths)
    expected = F.cross_entropy(logit_m, torch.zeros(len(logit_m), dtype=torch.long)) + F.cross_entropy(
        logit_u, torch.zeros(len(logit_u), dtype=torch.long)
    )
    expected.backward()
    reference_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(5)  # the same masks and dropout
    ours_m, labels_m, ours_u, labels_u, ours_penalty = hubert_logits(model, waves, lengths, labels)
    loss = F.cross_entropy(ours_m, labels_m) + F.cross_entropy(ours_u, labels_u)
    loss.backward()
    assert len(ours_m) == len(logit_m) > 0 and len(ours_u) == len(logit_u) > 0
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_penalty, penalty)
    torch.testing.assert_close(ours_m.gather(1, labels_m[:, None])[:, 0], logit_m[:, 0], atol=1e-4, rtol=0)
    for p, reference in zip(model.parameters(), reference_grads):
        torch.testing.assert_close(p.grad, reference, atol=1e-5, rtol=1e-4)
