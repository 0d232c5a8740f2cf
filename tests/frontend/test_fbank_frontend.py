"""The fbank front-end: Kaldi features on the fly, CMVN, frame counts, padding, feats input."""

import numpy as np
import pytest
import torch

from espnet_distill.features.fbank import CMVNStats, FbankOptions, compute_fbank
from espnet_distill.frontend.fbank import BatchedKaldiFbank, FbankFrontend
from tests.conftest import tiny_batch
from tests.features.kaldi_reference import knf_fbank


def write_stats(path, feats_list):
    stats = CMVNStats(80)
    for feats in feats_list:
        stats.add(np.asarray(feats))
    np.savez(path, count=stats.count, sum=stats.sum, sum_square=stats.sum_square)
    return stats


def test_batched_fbank_equals_the_fbank_stage_and_kaldi(tiny_corpus):
    waves, lengths = tiny_batch(tiny_corpus, 8)
    assert 0.1 < waves.abs().max() <= 1.0  # waveforms in [-1, 1]: the filterbank scales them as Kaldi does
    feats, frames = BatchedKaldiFbank()(waves, lengths)
    for i, n in enumerate(lengths.tolist()):
        samples = waves[i, :n].numpy()
        stage = compute_fbank(samples, FbankOptions()).numpy()  # what stage 2 writes
        assert int(frames[i]) == stage.shape[0] == 1 + (n - 400) // 160
        assert np.abs(feats[i, : int(frames[i])].numpy() - stage).max() < 1e-3
        assert np.abs(feats[i, : int(frames[i])].numpy() - knf_fbank(samples, FbankOptions())).max() < 5e-3


@pytest.mark.parametrize("preemphasis, dc", [(0.97, True), (0.0, True), (0.97, False)])
def test_the_frame_basis_gives_the_fft_paths_features(tiny_corpus, preemphasis, dc):
    """The export's one-MatMul spectrum (DC removal, pre-emphasis, window and DFT folded) against the FFT path
    and Kaldi's own (kaldi-native-fbank), silence included (log of the energy floor); a config that turns
    pre-emphasis or DC removal off is followed by both paths."""
    waves, lengths = tiny_batch(tiny_corpus, 4)
    waves[0, :4000] = 0.0
    opts = FbankOptions(preemphasis_coefficient=preemphasis, remove_dc_offset=dc)
    fft, folded = BatchedKaldiFbank(opts), BatchedKaldiFbank(opts)
    folded.use_frame_basis()
    assert folded.frame_basis.shape == (2 * 257, 1, 400)
    a, frames = fft(waves, lengths)
    b, _ = folded(waves, lengths)
    for i, n in enumerate(frames.tolist()):
        assert np.abs(a[i, :n].numpy() - b[i, :n].numpy()).max() < 1e-3
        samples = waves[i, : int(lengths[i])].numpy()
        assert np.abs(b[i, :n].numpy() - knf_fbank(samples, opts)).max() < 5e-3
    assert float(b[0, :20].max()) == pytest.approx(float(np.log(np.finfo(np.float32).eps)))  # the silent start


def test_output_frames_match_hubert_cnn():
    frontend = FbankFrontend(output_dim=32, conv_channels=16).eval()
    assert frontend.frame_shift == 320
    lengths = torch.tensor([16000, 12345, 720, 560, 400])
    with torch.no_grad():
        out, frames = frontend(torch.randn(5, 16000) * 0.1, lengths)
    expected = [1 + (n - 400) // 320 for n in lengths.tolist()]
    assert frames.tolist() == expected and out.shape == (5, expected[0], 32)


def test_padded_batch_equals_each_utterance_alone(tiny_corpus):
    torch.manual_seed(0)
    frontend = FbankFrontend(output_dim=32, conv_channels=16).eval()
    waves, lengths = tiny_batch(tiny_corpus, 3)
    assert len(set(lengths.tolist())) == 3
    with torch.no_grad():
        batch, frames = frontend(waves, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone, count = frontend(waves[i : i + 1, :n], lengths[i : i + 1])
            assert int(frames[i]) == int(count[0])
            torch.testing.assert_close(batch[i, : int(count[0])], alone[0], atol=1e-5, rtol=0)


def test_cmvn_from_stats_file_and_state_dict(tiny_corpus, tmp_path):
    waves, lengths = tiny_batch(tiny_corpus, 4)
    stage_feats = [compute_fbank(waves[i, :n].numpy(), FbankOptions()) for i, n in enumerate(lengths.tolist())]
    stats = write_stats(tmp_path / "feats_stats.npz", stage_feats)
    frontend = FbankFrontend(output_dim=32, conv_channels=16, stats_file=tmp_path / "feats_stats.npz").eval()
    normalized, _ = frontend.features(waves, lengths)
    valid = torch.cat([normalized[i, : f.shape[0]] for i, f in enumerate(stage_feats)])
    # Normalized with the set's own statistics: zero mean, unit variance per dim.
    assert valid.mean(0).abs().max() < 1e-3 and (valid.std(0, unbiased=False) - 1).abs().max() < 1e-3
    np.testing.assert_allclose(frontend.cmvn_mean.numpy(), stats.mean, rtol=1e-5)
    # A front-end built without the file gets the statistics from the state dict.
    rebuilt = FbankFrontend(output_dim=32, conv_channels=16).eval()
    rebuilt.load_state_dict(frontend.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(waves, lengths)[0], frontend(waves, lengths)[0])
    np.savez(tmp_path / "bad.npz", count=1, sum=np.zeros(40), sum_square=np.ones(40))
    with pytest.raises(ValueError, match="bad.npz.*80 mels"):
        FbankFrontend(stats_file=tmp_path / "bad.npz")


def test_feats_scp_input_equals_waveform_input(tiny_corpus):
    torch.manual_seed(0)
    frontend = FbankFrontend(output_dim=32, conv_channels=16).eval()
    waves, lengths = tiny_batch(tiny_corpus, 3)
    stage_feats = [compute_fbank(waves[i, :n].numpy(), FbankOptions()) for i, n in enumerate(lengths.tolist())]
    feat_lengths = torch.tensor([f.shape[0] for f in stage_feats])
    feats = torch.nn.utils.rnn.pad_sequence(stage_feats, batch_first=True)
    with torch.no_grad():
        from_wav, frames_wav = frontend(waves, lengths)
        from_feats, frames_feats = frontend(feats, feat_lengths)
    assert frames_wav.tolist() == frames_feats.tolist()
    torch.testing.assert_close(from_feats, from_wav, atol=2e-3, rtol=0)


def test_specaug_masks_only_in_training(tiny_corpus):
    torch.manual_seed(0)
    conf = dict(
        apply_time_warp=False,
        freq_mask_width_range=[10, 20],
        num_freq_mask=2,
        time_mask_width_range=[5, 10],
        num_time_mask=2,
    )
    frontend = FbankFrontend(output_dim=32, conv_channels=16, specaug_conf=conf)
    waves, lengths = tiny_batch(tiny_corpus, 2)
    frontend.train()
    masked, _ = frontend.features(waves, lengths)
    frontend.eval()
    clean, _ = frontend.features(waves, lengths)
    valid = torch.cat([clean[i, : int(n)] for i, n in enumerate(BatchedKaldiFbank().num_frames(lengths))])
    masked_valid = torch.cat([masked[i, : int(n)] for i, n in enumerate(BatchedKaldiFbank().num_frames(lengths))])
    zeroed = (masked_valid == 0) & (valid != 0)
    assert zeroed.float().mean() > 0.1
    assert torch.equal(clean, frontend.features(waves, lengths)[0])  # eval: deterministic, unmasked
