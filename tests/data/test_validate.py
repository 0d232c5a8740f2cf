import kaldiio
import numpy as np
import pytest

from espnet_distill.data.audio import AudioError
from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.validate import validate_data_dir
from tests.conftest import write_wav


def lines(path):
    return path.read_text().splitlines()


def test_tiny_corpus_dirs_are_valid(tiny_corpus):
    for name in ("train", "train_10pct", "dev", "test"):
        counts = validate_data_dir(tiny_corpus["data"] / name, check_audio=True)
        assert counts["utterances"] > 0 and counts["speakers"] > 0


def test_unsorted_file(data_dir_copy):
    text = data_dir_copy / "text"
    text.write_text("\n".join(reversed(lines(text))) + "\n")
    with pytest.raises(DataDirError, match=r"text:2: .* not sorted"):
        validate_data_dir(data_dir_copy)


def test_duplicate_id(data_dir_copy):
    wav = data_dir_copy / "wav.scp"
    first = lines(wav)[0]
    wav.write_text(first + "\n" + wav.read_text())
    utt = first.split()[0]
    with pytest.raises(DataDirError, match=rf"wav.scp:2: duplicate id '{utt}'"):
        validate_data_dir(data_dir_copy)


def test_transcript_without_audio(data_dir_copy):
    text = data_dir_copy / "text"
    text.write_text(text.read_text() + "zzz-0001 HELLO THERE\n")
    with pytest.raises(
        DataDirError, match=r"text: utterance 'zzz-0001' is not in utt2spk \(a transcript with no audio\)"
    ):
        validate_data_dir(data_dir_copy)


def test_audio_without_transcript(data_dir_copy):
    text = data_dir_copy / "text"
    kept = lines(text)[1:]
    missing = lines(text)[0].split()[0]
    text.write_text("\n".join(kept) + "\n")
    with pytest.raises(DataDirError, match=rf"text: utterance '{missing}' of utt2spk is missing"):
        validate_data_dir(data_dir_copy)


def test_empty_transcript(data_dir_copy):
    text = data_dir_copy / "text"
    rows = lines(text)
    utt = rows[0].split()[0]
    text.write_text("\n".join([utt] + rows[1:]) + "\n")
    with pytest.raises(DataDirError, match=rf"text: utterance '{utt}' has an empty transcript"):
        validate_data_dir(data_dir_copy)


def test_non_utf8_transcript(data_dir_copy):
    text = data_dir_copy / "text"
    rows = lines(text)
    utt = rows[1].split()[0]
    data = (rows[0] + "\n").encode() + f"{utt} CAF".encode() + b"\xe9\n" + "".join(r + "\n" for r in rows[2:]).encode()
    text.write_bytes(data)
    with pytest.raises(DataDirError, match=rf"text:2: utterance '{utt}': not valid UTF-8"):
        validate_data_dir(data_dir_copy)


def test_spk2utt_disagrees(data_dir_copy):
    spk2utt = data_dir_copy / "spk2utt"
    rows = lines(spk2utt)
    spk, *utts = rows[0].split()
    spk2utt.write_text("\n".join([" ".join([spk] + utts[:-1])] + rows[1:]) + "\n")
    with pytest.raises(DataDirError, match=rf"spk2utt: utterances of speaker '{spk}' disagree"):
        validate_data_dir(data_dir_copy)


def test_speaker_order_must_follow_utterance_order(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "utt2spk").write_text("a-1 zed\nb-1 amy\n")
    (d / "spk2utt").write_text("amy b-1\nzed a-1\n")
    (d / "text").write_text("a-1 HI\nb-1 HO\n")
    (d / "wav.scp").write_text("a-1 /x.wav\nb-1 /y.wav\n")
    with pytest.raises(DataDirError, match="prefix utterance ids with the speaker id"):
        validate_data_dir(d)


def test_missing_and_bad_audio_with_check_audio(data_dir_copy, tmp_path):
    wav = data_dir_copy / "wav.scp"
    rows = lines(wav)
    utt = rows[0].split()[0]
    wav.write_text("\n".join([f"{utt} {tmp_path}/gone.wav"] + rows[1:]) + "\n")
    validate_data_dir(data_dir_copy)  # existence is only checked with check_audio
    with pytest.raises(Exception, match=rf"utterance '{utt}': audio file .*gone.wav does not exist"):
        validate_data_dir(data_dir_copy, check_audio=True)
    write_wav(tmp_path / "r8k.wav", np.zeros(800), rate=8000)
    wav.write_text("\n".join([f"{utt} {tmp_path}/r8k.wav"] + rows[1:]) + "\n")
    with pytest.raises(DataDirError, match=rf"utterance '{utt}': .*r8k.wav is sampled at 8000 Hz"):
        validate_data_dir(data_dir_copy, check_audio=True)


def test_feats_are_loaded_and_checked(data_dir_copy, tmp_path):
    utts = [r.split()[0] for r in lines(data_dir_copy / "utt2spk")]
    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for i, utt in enumerate(utts):
            writer(utt, np.ones((10 + i, 80), dtype=np.float32))
    (data_dir_copy / "feats.scp").write_text(scp.read_text())
    (data_dir_copy / "utt2num_frames").write_text("".join(f"{u} {10 + i}\n" for i, u in enumerate(utts)))
    validate_data_dir(data_dir_copy, need_feats=True, feat_dim=80)
    with pytest.raises(DataDirError, match=rf"utterance '{utts[0]}': shape \(10, 80\), expected \(frames, 40\)"):
        validate_data_dir(data_dir_copy, need_feats=True, feat_dim=40)
    (data_dir_copy / "utt2num_frames").write_text("".join(f"{u} 11\n" for u in utts))
    with pytest.raises(DataDirError, match=rf"utterance '{utts[0]}': 11 frames but feats.scp holds 10"):
        validate_data_dir(data_dir_copy, need_feats=True, feat_dim=80)


def test_missing_required_file(data_dir_copy):
    (data_dir_copy / "text").unlink()
    validate_data_dir(data_dir_copy, need_text=False)
    with pytest.raises(DataDirError, match="text is missing"):
        validate_data_dir(data_dir_copy)
    with pytest.raises(DataDirError, match="feats.scp is missing"):
        validate_data_dir(data_dir_copy, need_text=False, need_feats=True)


def test_check_audio_runs_pipe_entries(data_dir_copy, tmp_path):
    wav = data_dir_copy / "wav.scp"
    rows = lines(wav)
    utt, path = rows[0].split(maxsplit=1)
    wav.write_text("\n".join([f"{utt} cat {path} |"] + rows[1:]) + "\n")
    validate_data_dir(data_dir_copy, check_audio=True)  # a working pipe passes
    wav.write_text("\n".join([f"{utt} cat {tmp_path}/gone.wav |"] + rows[1:]) + "\n")
    with pytest.raises(AudioError, match=rf"utterance '{utt}': command 'cat .*gone.wav ' failed"):
        validate_data_dir(data_dir_copy, check_audio=True)
    write_wav(tmp_path / "r8k.wav", np.zeros(800), rate=8000)
    wav.write_text("\n".join([f"{utt} cat {tmp_path}/r8k.wav |"] + rows[1:]) + "\n")
    with pytest.raises(AudioError, match=rf"utterance '{utt}': the output of 'cat .*r8k.wav ' is sampled at 8000 Hz"):
        validate_data_dir(data_dir_copy, check_audio=True)


def small_dir(root, utt2spk="spkA-u1 spkA\nspkA-u2 spkA\n", spk2utt="spkA spkA-u1 spkA-u2\n"):
    d = root / "d"
    d.mkdir()
    (d / "utt2spk").write_text(utt2spk, encoding="utf-8")
    (d / "spk2utt").write_text(spk2utt, encoding="utf-8")
    (d / "text").write_text("spkA-u1 HI\nspkA-u2 HO\n")
    (d / "wav.scp").write_text("spkA-u1 /x.wav\nspkA-u2 /y.wav\n")
    return d


@pytest.mark.parametrize("name", ["utt2spk", "spk2utt", "text", "wav.scp"])
def test_a_byte_order_mark_is_named_not_called_unsorted(tmp_path, name):
    d = small_dir(tmp_path)
    (d / name).write_bytes(b"\xef\xbb\xbf" + (d / name).read_bytes())
    with pytest.raises(DataDirError, match=rf"{name}:1: starts with a UTF-8 byte-order mark; remove it"):
        validate_data_dir(d)


def test_utterance_id_with_a_space_is_named_not_a_speaker_disagreement(tmp_path):
    d = small_dir(tmp_path, utt2spk="spkA u1 spkA\nspkA-u2 spkA\n", spk2utt="spkA spkA u1 spkA-u2\n")
    with pytest.raises(
        DataDirError,
        match=r"utt2spk:1: 'spkA': the line has 3 fields, expected '<utt> <spk>'; ids cannot contain whitespace",
    ):
        validate_data_dir(d)


def test_utterance_id_with_a_non_ascii_space(tmp_path):
    d = small_dir(tmp_path, utt2spk="spkA\u00a0u1 spkA\nspkA-u2 spkA\n")
    with pytest.raises(DataDirError, match=r"utt2spk:1: id 'spkA\\xa0u1' contains the whitespace character U\+00A0"):
        validate_data_dir(d)


@pytest.mark.parametrize(
    "name, content, layout",
    [
        ("utt2dur", "spkA-u1 1.5 s\nspkA-u2 2.0\n", "<utt> <seconds>"),
        ("utt2num_frames", "spkA-u1 150\nspkA-u2 200 frames\n", "<utt> <frames>"),
        ("spk2gender", "spkA f m\n", "<spk> <m|f>"),
    ],
)
def test_single_value_files_with_more_fields(tmp_path, name, content, layout):
    d = small_dir(tmp_path)
    (d / name).write_text(content)
    line = 2 if name == "utt2num_frames" else 1
    with pytest.raises(DataDirError, match=rf"{name}:{line}: .*the line has 3 fields, expected '{layout}'"):
        validate_data_dir(d)


def test_spk2gender_is_checked_when_present(tmp_path):
    d = small_dir(tmp_path)
    (d / "spk2gender").write_text("spkA f\n")
    assert validate_data_dir(d) == {"utterances": 2, "speakers": 1}
    (d / "spk2gender").write_text("spkA female\n")
    with pytest.raises(DataDirError, match=r"spk2gender: speaker 'spkA': gender 'female', expected m or f"):
        validate_data_dir(d)
    (d / "spk2gender").write_text("spkB m\n")
    with pytest.raises(DataDirError, match=r"spk2gender: speaker 'spkB' is not in utt2spk"):
        validate_data_dir(d)


def test_segments_are_refused_even_past_the_end_of_the_audio(data_dir_copy):
    rows = lines(data_dir_copy / "wav.scp")
    utt = rows[0].split()[0]
    (data_dir_copy / "segments").write_text(f"{utt} {utt} 0.00 999.00\n")  # far past the end of the audio
    with pytest.raises(DataDirError) as info:
        validate_data_dir(data_dir_copy, check_audio=True)
    assert str(info.value).startswith(f"{data_dir_copy}/segments: segments files are not supported")
    assert "sox in.wav out.wav trim <start> =<end>" in str(info.value)


@pytest.mark.parametrize(
    "command, message",
    [
        # the first command fails; without pipefail only cat's exit status 0 counted
        (
            "sh -c 'head -c 20000 {path}; exit 1' | cat",
            r"command \"sh -c 'head -c 20000 .*' \| cat \" failed \(exit 1\)",
        ),
        # the WAV stops before the end its header declares (and cat, cut off, may die of SIGPIPE first)
        ("cat {path} | head -c 30000", r"(the output of )?command 'cat .* \| head -c 30000 ' (is truncated|failed)"),
    ],
)
def test_check_audio_refuses_a_failing_or_short_pipe(data_dir_copy, command, message):
    wav = data_dir_copy / "wav.scp"
    rows = lines(wav)
    utt, path = rows[0].split(maxsplit=1)
    wav.write_text("\n".join([f"{utt} {command.format(path=path)} |"] + rows[1:]) + "\n")
    with pytest.raises(AudioError, match=rf"utterance '{utt}': {message}"):
        validate_data_dir(data_dir_copy, check_audio=True)
