"""The wav_cnn front-end: shapes, padding invariance, initialisation from a teacher."""

import pytest
import torch

from espnet_distill.frontend.conv import conv_layer_list, masked_group_norm
from espnet_distill.frontend.wav_cnn import WavCNNFrontend
from espnet_distill.teacher import load_teacher
from tests.conftest import tiny_batch

SMALL_CONV = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"


def test_frames_follow_hubert_strides():
    frontend = WavCNNFrontend(conv_layers=SMALL_CONV, output_dim=48).eval()
    assert frontend.frame_shift == 320 and frontend.receptive_field == 400
    lengths = torch.tensor([16000, 12345, 400])
    feats, frames = frontend(torch.randn(3, 16000), lengths)
    expected = [1 + (n - 400) // 320 for n in lengths.tolist()]
    assert frames.tolist() == expected and feats.shape == (3, expected[0], 48)


def test_conv_layers_accept_lists_and_reject_nonsense():
    assert conv_layer_list([[8, 10, 5], [8, 3, 2]]) == [(8, 10, 5), (8, 3, 2)]
    with pytest.raises(ValueError, match="triples"):
        conv_layer_list([[8, 10]])


@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
def test_padded_batch_equals_each_utterance_alone(tiny_corpus, mode):
    torch.manual_seed(0)
    frontend = WavCNNFrontend(conv_layers=SMALL_CONV, extractor_mode=mode, output_dim=48).eval()
    waves, lengths = tiny_batch(tiny_corpus, 3)
    assert len(set(lengths.tolist())) == 3  # really padded
    with torch.no_grad():
        batch, frames = frontend(waves, lengths)
        for i, length in enumerate(lengths.tolist()):
            alone, n = frontend(waves[i : i + 1, :length], lengths[i : i + 1])
            assert int(frames[i]) == int(n[0])
            torch.testing.assert_close(batch[i, : int(n[0])], alone[0], atol=1e-5, rtol=0)


def test_init_from_teacher_reproduces_the_teachers_projected_features(tiny_teacher_path, tiny_corpus):
    teacher = load_teacher("torchaudio", path=str(tiny_teacher_path))
    frontend = WavCNNFrontend(conv_layers=SMALL_CONV, output_dim=64, dropout=0.0)
    frontend.init_from_teacher(teacher.model)
    frontend.eval()
    waves, lengths = tiny_batch(tiny_corpus, 1)
    with torch.no_grad():
        ours, _ = frontend(waves, lengths)
        cnn, _ = teacher.model.feature_extractor(waves, lengths)
        reference = teacher.model.encoder.feature_projection(cnn)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_init_from_a_different_cnn_is_refused(tiny_teacher_path):
    teacher = load_teacher("torchaudio", path=str(tiny_teacher_path))
    frontend = WavCNNFrontend(conv_layers="[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2", output_dim=64)
    with pytest.raises(ValueError, match="does not match the teacher's CNN"):
        frontend.init_from_teacher(teacher.model)


@pytest.mark.parametrize("groups, channels, affine", [(16, 16, True), (2, 6, True), (1, 4, False)])
def test_masked_group_norm_equals_torchs_on_each_utterance_alone(groups, channels, affine):
    """Both paths: a batch with padding (masked statistics) and one without (PyTorch's own group norm)."""
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(groups, channels, affine=affine)
    if affine:
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, channels, 40) * 5 + 3  # far from zero mean: the variance is computed centred
    for lengths in ([40, 40, 40], [40, 23, 2]):
        out = masked_group_norm(norm, x, torch.tensor(lengths))
        for i, n in enumerate(lengths):
            torch.testing.assert_close(out[i, :, :n], norm(x[i : i + 1, :, :n])[0], atol=2e-5, rtol=1e-5)
    empty = masked_group_norm(norm, x, torch.tensor([40, 0, 5]))
    assert bool(torch.isfinite(empty).all())
