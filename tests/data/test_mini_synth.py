from collections import Counter

import pytest
import soundfile

from espnet_distill.data import mini_synth
from espnet_distill.data.kaldi_dir import read_kaldi_map


def voice_of(speakers, spk_id):
    return next((s.engine, s.voice) for s in speakers if s.spk_id == spk_id)


def test_at_least_twenty_voices_and_each_in_one_split():
    speakers = mini_synth.make_speakers(seed=1)
    assert len({(s.engine, s.voice) for s in speakers}) == len(speakers) >= 20
    splits = {}
    for s in speakers:
        variant = s.voice.split("+")[-1] if s.engine == "espeak" else s.voice.replace("16", "")
        splits.setdefault(variant, set()).add(s.split)
    # A voice variant (and flite's speakers) never crosses the train / dev / test boundary.
    assert all(len(v) == 1 for v in splits.values()), splits
    assert {s.split for s in speakers} == {"train", "dev", "test"}


def test_the_pool_has_many_more_voices_and_none_of_dev_or_test():
    speakers = mini_synth.make_speakers(seed=1, pool_speakers=80)
    assert mini_synth.make_speakers(seed=1) == speakers[:30]  # the labelled speakers do not change
    pool = [s for s in speakers if s.split == "pool"]
    assert len(pool) == 80 and len({(s.engine, s.voice) for s in pool}) == 80 - 5 + 2  # 5 flite renditions of 2 voices
    variants = {s.voice.split("+")[-1] if s.engine == "espeak" else s.voice for s in pool}
    held_out = {
        s.voice.split("+")[-1] if s.engine == "espeak" else s.voice.replace("16", "")
        for s in speakers
        if s.split in ("dev", "test")
    }
    assert not variants & held_out and len(variants) > 40
    train_voices = {s.voice for s in speakers if s.split == "train"}
    assert not {s.voice for s in pool if s.engine == "espeak"} & train_voices  # new voices, not more of train's


def test_plan_is_deterministic_and_sentences_are_disjoint():
    sentences = mini_synth.default_sentences()
    plan = mini_synth.plan_corpus(sentences, size="small", seed=3)
    again = mini_synth.plan_corpus(sentences, size="small", seed=3)
    other = mini_synth.plan_corpus(sentences, size="small", seed=4)
    assert plan == again and plan != other
    texts = {split: {u.text for u in utts} for split, utts in plan.items()}
    all_texts = [u.text for utts in plan.values() for u in utts]
    assert len(all_texts) == len(set(all_texts))  # no sentence spoken twice
    assert not texts["train"] & (texts["dev"] | texts["test"])
    for line in (u.to_line() for u in plan["test"]):
        assert mini_synth.PlannedUtterance.from_line(line).to_line() == line


def test_voice_that_does_not_say_the_text_is_refused(tmp_path):
    """flite's awb_time speaks only clock times: far too little audio for a sentence."""
    assert "awb_time" not in {voice for _, voice, _ in mini_synth.VOICES}
    utt = mini_synth.PlannedUtterance(
        "bad-0001",
        "flite",
        "awb_time",
        1.0,
        110.0,
        -26.0,
        -60.0,
        "THE PORCUPINE WITH THE SHARPEST QUILLS GETS STUCK ON A TREE",
    )
    with pytest.raises(RuntimeError, match="bad-0001.*did not say the text"):
        mini_synth.synthesize_one(utt, tmp_path / "bad.wav")
    assert not (tmp_path / "bad.wav").exists()
    good = mini_synth.PlannedUtterance("good-0001", "flite", "awb", 1.0, 110.0, -26.0, -60.0, utt.text)
    mini_synth.synthesize_one(good, tmp_path / "good.wav")
    assert soundfile.info(str(tmp_path / "good.wav")).duration > 2.0


def test_tiny_corpus_data_dirs(tiny_corpus):
    data = tiny_corpus["data"]
    speakers = mini_synth.make_speakers(seed=1)
    split_speakers = {}
    for name in ("train", "dev", "test"):
        utt2spk = read_kaldi_map(data / name / "utt2spk")
        split_speakers[name] = set(utt2spk.values())
        assert {s.split for s in speakers if s.spk_id in split_speakers[name]} == {name}
        for utt, path in read_kaldi_map(data / name / "wav.scp").items():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            duration = float(read_kaldi_map(data / name / "utt2dur")[utt])
            assert abs(info.frames / 16000 - duration) < 1e-3 and duration > 0.3
    voices = {name: {voice_of(speakers, s) for s in spks} for name, spks in split_speakers.items()}
    assert not voices["test"] & voices["train"] and not voices["dev"] & voices["train"]
    # The low-resource subset: train utterances, every train speaker, about 10% at full size.
    low = read_kaldi_map(data / "train_10pct" / "utt2spk")
    train = read_kaldi_map(data / "train" / "utt2spk")
    assert set(low) < set(train) and set(low.values()) == set(train.values())
    # The pool is unlabelled; ssl is the pool and train, without transcripts.
    pool = read_kaldi_map(data / "pool" / "utt2spk")
    assert pool and all(spk.startswith("pool") for spk in pool.values()) and not (data / "pool" / "text").exists()
    assert read_kaldi_map(data / "ssl" / "utt2spk") == {**pool, **train} and not (data / "ssl" / "text").exists()
    pool_voices = {
        voice_of(mini_synth.make_speakers(seed=1, pool_speakers=len(set(pool.values()))), s) for s in set(pool.values())
    }
    assert not pool_voices & (voices["dev"] | voices["test"])


def test_low_resource_subset_is_about_ten_percent():
    train = {"utt2spk": {f"s{s}-{u:03d}": f"s{s}" for s in range(5) for u in range(40)}}
    subset = mini_synth._low_resource_subset(train, seed=1)
    counts = Counter(subset["utt2spk"].values())
    assert sum(counts.values()) == 20 and set(counts.values()) == {4}


def test_default_size_plans_an_hour_of_train_speech_and_four_of_pool():
    plan = mini_synth.plan_corpus(mini_synth.default_sentences(), size="default", seed=1)
    # espeak-ng and flite speak about 2.5 to 3 words per second at these rates.
    hours = {split: sum(len(u.text.split()) for u in utts) / 2.7 / 3600 for split, utts in plan.items()}
    assert 0.8 < hours["train"] < 1.3 and 3.5 < hours["pool"] < 5.0
    texts = {split: {u.text for u in utts} for split, utts in plan.items()}
    assert not texts["pool"] & (texts["dev"] | texts["test"] | texts["train"])
