import numpy as np
import pytest

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.features.fbank import CMVNStats, FbankOptions, compute_fbank, num_frames
from tests.features.kaldi_reference import compare_with_kaldi


def corpus_utterances(tiny_corpus, count=12):
    wav_scp = read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp")
    wav_scp.update(read_kaldi_map(tiny_corpus["data"] / "train" / "wav.scp"))
    return list(wav_scp.items())[:count]


def test_matches_kaldi_native_fbank_on_corpus_utterances(tiny_corpus):
    opts = FbankOptions()
    results = []
    for utt, path in corpus_utterances(tiny_corpus, count=24):
        samples, _ = read_audio(utt, path)
        feats = compute_fbank(samples, opts).numpy()
        assert feats.shape == (num_frames(len(samples), opts), 80)
        results.append(compare_with_kaldi(samples, feats, opts))
    # Within 1e-3 of kaldi-native-fbank wherever its float32 arithmetic is
    # precise, and of exact arithmetic everywhere.
    assert max(r["knf_max"] for r in results) < 1e-3
    assert max(r["exact_max"] for r in results) < 1e-3
    # Entries where kaldi-native-fbank's own round-off exceeds 5e-4 are rare.
    assert sum(r["imprecise_entries"] for r in results) <= 1e-4 * sum(r["entries"] for r in results)


@pytest.mark.parametrize("snip_edges", [True, False])
def test_num_frames_formula(snip_edges):
    opts = FbankOptions(snip_edges=snip_edges)
    for n in (400, 401, 560, 16000, 16123):
        samples = np.random.default_rng(n).integers(-1000, 1000, n).astype(np.float32) / 32768
        assert compute_fbank(samples, opts).shape[0] == num_frames(n, opts)
    assert num_frames(399, FbankOptions()) == 0


def test_dither_is_reproducible_per_utterance():
    samples = np.random.default_rng(0).integers(-100, 100, 8000).astype(np.float32) / 32768
    opts = FbankOptions(dither=1.0)
    a = compute_fbank(samples, opts, seed_key="utt1")
    b = compute_fbank(samples, opts, seed_key="utt1")
    c = compute_fbank(samples, opts, seed_key="utt2")
    plain = compute_fbank(samples, FbankOptions())
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert not np.array_equal(a.numpy(), plain.numpy())


def test_cmvn_stats_match_numpy(tmp_path):
    rng = np.random.default_rng(1)
    parts = [rng.normal(3.0, 2.0, size=(n, 5)) for n in (7, 11, 13)]
    stats, other = CMVNStats(5), CMVNStats(5)
    stats.add(parts[0])
    stats.add(parts[1])
    other.add(parts[2])
    stats.merge(other)
    everything = np.concatenate(parts)
    np.testing.assert_allclose(stats.mean, everything.mean(0))
    np.testing.assert_allclose(stats.std, everything.std(0))
    with open(tmp_path / "s.npz", "wb") as f:
        stats.save_npz(f)
    loaded = CMVNStats.load_npz(tmp_path / "s.npz")
    assert loaded.count == 31
    np.testing.assert_allclose(loaded.sum_square, stats.sum_square)
    matrix = stats.kaldi_matrix()
    assert matrix.shape == (2, 6) and matrix[0, -1] == 31
