"""transcribe: any format and rate, chunked long recordings stitched without seams, bad files, both backends."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.inference.audio import TranscribeError, load_audio
from espnet_distill.inference.ctc_search import decode_log_probs
from espnet_distill.inference.transcribe import chunked_log_probs
from espnet_distill.text.tokens import Tokenizer
from tests.conftest import REPO_ROOT, lm_with_tokens, write_wav
from tests.export.test_onnx import exps  # noqa: F401  (tiny wav_cnn and fbank models that emit text)
from tests.tasks.test_asr_task import setup  # noqa: F401

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe


def first_utterance(tiny_corpus, index=0):
    utt, spec = list(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp").items())[index]
    return read_audio(utt, spec)[0]


def test_stereo_and_other_rates_become_16k_mono(tiny_corpus, tmp_path):
    import torchaudio

    wave = first_utterance(tiny_corpus)
    sf.write(tmp_path / "mono.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "stereo.flac", np.stack([wave, wave], 1), 16000, subtype="PCM_24")
    up = torchaudio.functional.resample(torch.from_numpy(wave).double(), 16000, 44100).numpy()
    sf.write(tmp_path / "cd.wav", np.stack([up, 0.5 * up], 1), 44100, subtype="FLOAT")
    mono = load_audio(tmp_path / "mono.wav")
    np.testing.assert_allclose(load_audio(tmp_path / "stereo.flac"), mono, atol=1e-4)
    cd = load_audio(tmp_path / "cd.wav")  # channels averaged (0.75 x), 44.1 kHz -> 16 kHz
    assert abs(len(cd) - len(wave)) <= 1
    n = min(len(cd), len(wave))
    expected = 0.75 * wave[:n]
    snr = 10 * np.log10((expected**2).sum() / ((cd[:n] - expected) ** 2).sum())
    assert snr > 30  # the round trip 16 -> 44.1 -> 16 kHz only loses what lies beyond the resampler's rolloff


@pytest.mark.parametrize(
    "bad, message", [("empty", "holds no samples"), ("text", "cannot read audio"), ("nan", "non-finite")]
)
def test_a_bad_recording_is_named(tmp_path, bad, message):
    path = tmp_path / f"{bad}.wav"
    if bad == "empty":
        sf.write(path, np.zeros(0), 16000)
    elif bad == "text":
        path.write_text("not audio")
    else:
        sf.write(path, np.array([0.0, np.nan, 0.1]), 16000, subtype="FLOAT")
    with pytest.raises(TranscribeError, match=f"{bad}.wav: .*{message}"):
        load_audio(path)


class LocalModel:
    """A model whose frame t depends only on samples [t * shift, t * shift + field): chunked must equal whole, exactly."""

    frame_shift, min_samples, vocab = 320, 400, 6

    def __call__(self, wave):
        frames = (len(wave) - self.min_samples) // self.frame_shift + 1
        energy = np.array([np.abs(wave[t * 320 : t * 320 + 400]).sum() for t in range(frames)])
        token = (np.floor(energy * 7.0) % self.vocab).astype(int)
        out = np.full((frames, self.vocab), -5.0)
        out[np.arange(frames), token] = 0.0
        return out


def test_chunks_are_stitched_frame_by_frame_with_nothing_lost_or_repeated():
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16000 * 75) * 0.1).astype(np.float32)  # 75 s
    model = LocalModel()
    whole = model(wave)
    for chunk, context in ((30.0, 4.0), (10.0, 1.0), (7.3, 0.51)):
        stitched, chunks = chunked_log_probs(model, wave, 320, 400, chunk, context)
        assert chunks > 1 and stitched.shape == whole.shape
        np.testing.assert_array_equal(stitched, whole)


def test_the_cli_on_long_stereo_44k_and_bad_files_with_both_backends(exps, tiny_corpus, tmp_path):  # noqa: F811
    import torchaudio

    # 60 s of speech: the test utterances one after another, as a 44.1 kHz stereo file.
    waves = [
        first_utterance(tiny_corpus, i) for i in range(len(read_kaldi_map(tiny_corpus["data"] / "test" / "wav.scp")))
    ]
    joined = np.concatenate([np.concatenate([w, np.zeros(4800, np.float32)]) for w in waves] * 20)[: 16000 * 61]
    assert len(joined) >= 16000 * 60
    up = torchaudio.functional.resample(torch.from_numpy(joined).double(), 16000, 44100).numpy()
    sf.write(tmp_path / "long.wav", np.stack([up, up], 1), 44100, subtype="PCM_16")
    sf.write(tmp_path / "short.wav", first_utterance(tiny_corpus), 16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt ")
    from espnet_distill.bin.export_onnx import main as export

    export([str(exps["fbank"]), str(tmp_path / "onnx"), "--checkpoint", "noisy.pth"])
    outputs = {}
    for name, model in (("torch", exps["fbank"]), ("onnx", tmp_path / "onnx")):
        cmd = [
            sys.executable,
            "-m",
            "espnet_distill.bin.transcribe",
            "--model",
            str(model),
            "--format",
            "json",
            "--chunk_seconds",
            "20",
            str(tmp_path / "long.wav"),
            str(tmp_path / "broken.wav"),
            str(tmp_path / "short.wav"),
        ]
        if name == "torch":
            cmd += ["--checkpoint", "noisy.pth"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 1, result.stderr[-2000:]  # the broken file
        assert (
            "broken.wav: cannot read audio" in result.stderr
            and "1 of 3 files could not be transcribed" in result.stderr
        )
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [line["file"] for line in lines] == [str(tmp_path / "long.wav"), str(tmp_path / "short.wav")]
        # 20 s chunks with 4 s of context on each side own 12 s each: 6 chunks for 61 s
        assert (
            lines[0]["chunks"] == 6
            and lines[0]["duration"] == pytest.approx(61, abs=0.01)
            and len(lines[0]["text"]) > 100
        )
        outputs[name] = [line["text"] for line in lines]
    assert outputs["onnx"] == outputs["torch"]


def test_beam_search_on_log_probs_scores_at_least_the_greedy_labels():
    tokens = ["<blank>", "<unk>", "<space>", "A", "B", "<sos/eos>"]
    tokenizer = Tokenizer(tokens, "char", None)
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((40, len(tokens))) * 1.5
    logits[:, [1, 5]] = -30
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))

    def ctc_log_likelihood(text):  # log P(labels | input), summed over alignments
        ids = torch.tensor(tokenizer.encode(text))
        lp = torch.from_numpy(log_probs).float()[:, None]
        return -torch.nn.functional.ctc_loss(lp, ids[None], [len(log_probs)], [len(ids)], reduction="sum").item()

    greedy = decode_log_probs(log_probs, tokenizer, 1)
    beam = decode_log_probs(log_probs, tokenizer, 4)
    assert set(greedy) <= set("AB ") and set(beam) <= set("AB ") and len(greedy) > 5
    assert ctc_log_likelihood(beam) >= ctc_log_likelihood(greedy) - 1e-4
    assert decode_log_probs(log_probs, tokenizer, 50) == decode_log_probs(log_probs, tokenizer, len(tokens) - 1)


RELEASED = REPO_ROOT / "egs" / "mini_synth" / "asr1" / "pretrained" / "asr_mini_fbank"


def score_chars(tmp_path, name, refs, hyps):
    from espnet_distill.scoring.sclite import score

    d = tmp_path / name
    d.mkdir()
    (d / "ref").write_text("".join(f"{k} {v}\n" for k, v in refs.items()))
    (d / "hyp").write_text("".join(f"{k} {v}\n" for k, v in hyps.items()))
    return score(d / "ref", d / "hyp", None, d, chars=True).err


def test_a_minute_of_speech_against_the_transcripts_it_was_made_from(tiny_corpus, sclite, tmp_path):
    """The released mini Fbank student (ONNX int8) on a recording of over 60 s joined from the tiny corpus's
    dev, test and train utterances: its CER against the joined transcripts is close to that of the same
    utterances decoded one by one, so long-form decoding (chunks, stitching) loses nothing material."""
    for line in (RELEASED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((RELEASED / name).read_bytes()).hexdigest() == digest, name
    files, texts, total = [], {}, 0.0
    for data_set in ("dev", "test", "train"):
        text = read_kaldi_map(tiny_corpus["data"] / data_set / "text")
        for utt, spec in read_kaldi_map(tiny_corpus["data"] / data_set / "wav.scp").items():
            if total >= 62.0:
                break
            samples, _ = read_audio(utt, spec)
            files.append(write_wav(tmp_path / "utts" / f"{utt}.wav", samples * 32768))  # the corpus's int16 samples
            texts[utt] = text[utt]
            total += len(samples) / 16000
    joined = np.concatenate([sf.read(str(f), dtype="int16")[0] for f in files])
    long = write_wav(tmp_path / "long.wav", joined)
    cmd = [sys.executable, "-m", "espnet_distill.bin.transcribe", "--model", str(RELEASED), "--int8", "true"]
    result = subprocess.run([*cmd, "--format", "json", str(long)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    whole = json.loads(result.stdout)
    assert whole["chunks"] >= 3 and whole["duration"] == pytest.approx(total, abs=0.01)
    result = subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    one_by_one = dict(line.split(" ", 1) if " " in line else (line, "") for line in result.stdout.splitlines())
    joined_ref = {"long": " ".join(texts.values())}
    long_cer = score_chars(tmp_path, "long", joined_ref, {"long": whole["text"]})
    separate_cer = score_chars(tmp_path, "separate", joined_ref, {"long": " ".join(one_by_one[str(f)] for f in files)})
    assert separate_cer < 60.0  # a real recognizer of these voices, not noise
    assert long_cer <= separate_cer + 3.0, (long_cer, separate_cer)


def test_transcribe_with_an_lm_gives_the_same_text_on_both_backends(exps, tiny_corpus, tiny_lm, tmp_path):  # noqa: F811
    from espnet_distill.bin.export_onnx import main as export
    from espnet_distill.inference.lm import load_lm

    sf.write(tmp_path / "short.wav", first_utterance(tiny_corpus), 16000)
    export([str(exps["fbank"]), str(tmp_path / "onnx"), "--checkpoint", "noisy.pth"])
    outputs = {}
    for name, model in (("torch", exps["fbank"]), ("onnx", tmp_path / "onnx")):
        texts = []
        for lm_args in ([], ["--lm", str(tiny_lm[0]), "--lm_weight", "1.5"]):
            cmd = [sys.executable, "-m", "espnet_distill.bin.transcribe", "--model", str(model), "--beam_size", "4"]
            cmd += lm_args + [str(tmp_path / "short.wav")] + (["--checkpoint", "noisy.pth"] if name == "torch" else [])
            result = subprocess.run(cmd, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[-2000:]
            texts.append(result.stdout.split(maxsplit=1)[1].strip())
        outputs[name] = texts
    assert outputs["onnx"] == outputs["torch"] and outputs["torch"][0] != outputs["torch"][1]
    # the fused text is the search's on the model's log-probabilities with the LM
    from espnet_distill.inference.transcribe import TorchBackend

    backend = TorchBackend(exps["fbank"], "noisy.pth")
    lm = load_lm(tiny_lm[0], backend.token_list, exps["fbank"] / "config.yaml")
    log_probs = backend.log_probs(load_audio(tmp_path / "short.wav"))
    assert decode_log_probs(log_probs, backend.tokenizer, 4, lm, 1.5) == outputs["torch"][1]
    # an LM of other tokens is refused before anything is transcribed, naming both files
    bad = lm_with_tokens(tiny_lm[0], tmp_path / "bad_lm", lambda tokens: tokens[:3] + ["Q"] + tokens[4:])
    cmd = [sys.executable, "-m", "espnet_distill.bin.transcribe", "--model", str(tmp_path / "onnx"), "--beam_size", "4"]
    result = subprocess.run(
        cmd + ["--lm", str(bad), "--lm_weight", "1", str(tmp_path / "short.wav")], capture_output=True, text=True
    )
    assert result.returncode == 1 and result.stdout == ""
    assert str(bad / "config.yaml") in result.stderr and str(tmp_path / "onnx" / "tokens.txt") in result.stderr
