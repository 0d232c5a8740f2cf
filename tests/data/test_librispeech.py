"""LibriSpeech / Libri-Light data dirs: layout, joins, and errors that name the file and utterance."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.data.librispeech import CorpusError, join_subsets, prepare, scan_subset, write_data_dir
from espnet_distill.data.validate import validate_data_dir


def add_chapter(subset: Path, speaker: int, chapter: int, texts, rate: int = 16000) -> Path:
    chapter_dir = subset / str(speaker) / str(chapter)
    chapter_dir.mkdir(parents=True)
    lines = []
    for n, text in enumerate(texts):
        utt = f"{speaker}-{chapter}-{n:04d}"
        samples = (np.sin(np.arange(8000 + 800 * n) * 0.05) * 3000).astype(np.int16)
        soundfile.write(str(chapter_dir / f"{utt}.flac"), samples, rate, format="FLAC")
        lines.append(f"{utt} {text}\n")
    (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return chapter_dir


@pytest.fixture
def subset(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev-clean"
    add_chapter(root, 84, 121123, ["GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES"])
    add_chapter(root, 174, 50561, ["FORGOTTEN TOO THE NAME OF GILLIAN"])
    return root


def test_subset_becomes_a_valid_data_dir_with_audio_in_place(subset, tmp_path):
    utts = scan_subset(subset)
    assert sorted(utts) == ["174-50561-0000", "84-121123-0000", "84-121123-0001"]
    assert write_data_dir(tmp_path / "data" / "dev_clean", utts) == 3
    data = tmp_path / "data" / "dev_clean"
    assert validate_data_dir(data, check_audio=True)["utterances"] == 3
    wav = read_kaldi_map(data / "wav.scp")
    assert wav["84-121123-0001"] == str((subset / "84" / "121123" / "84-121123-0001.flac").resolve())
    assert read_kaldi_map(data / "utt2spk")["174-50561-0000"] == "174-50561"  # speaker-chapter, as Kaldi's recipe
    assert read_kaldi_map(data / "text")["84-121123-0000"] == "GO DO YOU HEAR"
    assert not (tmp_path / "data" / "dev_clean.tmp").exists()


def test_transcript_line_without_audio_names_the_utterance(subset):
    (subset / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.raises(CorpusError, match=r"84-121123.trans.txt:2: utterance '84-121123-0001' has no audio"):
        scan_subset(subset)


def test_audio_without_transcript_names_the_file(subset):
    shutil.copy(subset / "84" / "121123" / "84-121123-0000.flac", subset / "84" / "121123" / "84-121123-0007.flac")
    with pytest.raises(CorpusError, match=r"84-121123-0007.flac: utterance '84-121123-0007' has no line in"):
        scan_subset(subset)


def test_ids_must_match_their_directory_and_appear_once(subset):
    trans = subset / "174" / "50561" / "174-50561.trans.txt"
    trans.write_text("174-50562-0000 WRONG CHAPTER\n")
    with pytest.raises(CorpusError, match=r"174-50561.trans.txt:1: utterance id '174-50562-0000' is not 174-50561-<n>"):
        scan_subset(subset)
    trans.write_text("174-50561-0000 ONE\n174-50561-0000 TWICE\n")
    with pytest.raises(CorpusError, match=r"utterance '174-50561-0000' is listed twice"):
        scan_subset(subset)


def test_the_same_utterance_in_two_subsets_is_an_error(subset, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(subset, other)
    with pytest.raises(CorpusError, match=r"utterance .174-50561-0000. is in both .*dev-clean and .*copy"):
        join_subsets([subset, other])


def test_missing_subset_fails_before_writing_it(tmp_path):
    root = tmp_path / "LibriSpeech"
    add_chapter(root / "dev-clean", 1, 2, ["A"])
    with pytest.raises(CorpusError, match=r"test-clean: no such directory"):
        prepare(tmp_path / "data", librispeech=tmp_path, data_dirs=["dev_clean", "test_clean"])
    assert (tmp_path / "data" / "dev_clean" / "wav.scp").is_file()  # finished before the error
    assert not (tmp_path / "data" / "test_clean").exists()
    with pytest.raises(CorpusError, match=r"unknown data dir 'train_10h'"):
        prepare(tmp_path / "data", librispeech=tmp_path, data_dirs=["train_10h"])
