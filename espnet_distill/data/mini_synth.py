"""The embedded mini corpus: English sentences spoken by synthetic voices.

The corpus is built in three steps, each a function with a thin CLI in
``espnet_distill.recipe.mini_synth``:

1. :func:`plan_corpus` chooses speakers (espeak-ng and flite voices with their
   own rate and pitch) and sentences, splits them train / dev / test / pool by
   speaker and by sentence, and writes one ``plan`` line per utterance.  It is
   deterministic for a given seed.
2. :func:`synthesize` renders the utterances of one split of the plan to 16 kHz
   mono 16-bit WAV; finished files are kept, so a rerun only does what is left.
3. :func:`write_data_dirs` writes the Kaldi data dirs ``train``,
   ``train_10pct`` (the low-resource labelled subset), ``dev``, ``test``,
   ``pool`` (unlabelled speech of many more voices) and ``ssl`` (the pool and
   ``train`` without transcripts: what teacher pretraining and distillation
   see, as LibriSpeech 960 h does in the paper).
"""

import os
import random
import shlex
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import soundfile
from scipy.signal import butter, lfilter
from tqdm import tqdm

from espnet_distill.data.audio import read_audio
from espnet_distill.data.kaldi_dir import (
    DataDirError,
    read_kaldi_map,
    utt2spk_to_spk2utt,
    write_kaldi_map,
    write_spk2utt,
)
from espnet_distill.data.text_norm import sentences_from_files
from espnet_distill.utils.fileio import atomic_write

PathLike = Union[str, Path]
SAMPLE_RATE = 16000
FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Fortune files of general English prose (Debian package ``fortunes``).
FORTUNE_FILES = (
    "art",
    "computers",
    "education",
    "food",
    "fortunes",
    "goedel",
    "humorists",
    "kids",
    "linuxcookie",
    "literature",
    "love",
    "magic",
    "medicine",
    "miscellaneous",
    "paradoxum",
    "people",
    "pets",
    "platitudes",
    "politics",
    "riddles",
    "science",
    "songs-poems",
    "startrek",
    "wisdom",
    "work",
)
SPLITS = ("train", "dev", "test", "pool")
LABELLED_SPLITS = ("train", "dev", "test")
POOL_SET = "pool"
SSL_SET = "ssl"  # pool + train, without transcripts
LOW_RESOURCE_SET = "train_10pct"
LOW_RESOURCE_FRACTION = 0.1

# (engine, voice, split).  A voice belongs to one split only, so dev and test
# voices are never heard in training.  espeak-ng voices are an accent plus a
# voice variant; variants used in dev or test are not used in train.  flite's
# kal and kal16 are the same speaker, so only kal16 (dev) is used; flite's
# awb_time speaks nothing but clock times, so it is not used at all.
VOICES = (
    ("espeak", "en-us+m1", "train"),
    ("espeak", "en-gb+m1", "train"),
    ("espeak", "en-us+m2", "train"),
    ("espeak", "en-gb-x-rp+m2", "train"),
    ("espeak", "en-us+m3", "train"),
    ("espeak", "en-029+m3", "train"),
    ("espeak", "en-gb+m4", "train"),
    ("espeak", "en-us-nyc+m4", "train"),
    ("espeak", "en-us+m5", "train"),
    ("espeak", "en-gb-scotland+m5", "train"),
    ("espeak", "en-us+f1", "train"),
    ("espeak", "en-gb+f1", "train"),
    ("espeak", "en-us+f2", "train"),
    ("espeak", "en-gb-x-rp+f2", "train"),
    ("espeak", "en-us+f3", "train"),
    ("espeak", "en-029+f3", "train"),
    ("espeak", "en-us+klatt", "train"),
    ("espeak", "en-gb+klatt", "train"),
    ("espeak", "en-us+klatt2", "train"),
    ("espeak", "en-gb-x-gbclan+klatt2", "train"),
    ("flite", "awb", "train"),
    ("flite", "rms", "train"),
    ("espeak", "en-gb-scotland+m6", "dev"),
    ("espeak", "en-029+f4", "dev"),
    ("espeak", "en-us+klatt3", "dev"),
    ("flite", "kal16", "dev"),
    ("espeak", "en-gb-x-rp+m7", "test"),
    ("espeak", "en-us-nyc+f5", "test"),
    ("espeak", "en-gb-x-gbclan+klatt4", "test"),
    ("flite", "slt", "test"),
)

# The unlabelled pool: espeak-ng accents x voice variants never used in dev or test (nor the
# robotic, whispering or distorted ones), and more renditions of flite's train speakers.
# A pool voice is an (accent, variant) pair not used in train; it is heard only in the pool.
POOL_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
POOL_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m8",
    "f1",
    "f2",
    "f3",
    "klatt",
    "klatt2",
    "klatt5",
    "klatt6",
    "Alex",
    "Andy",
    "Annie",
    "adam",
    "anika",
    "announcer",
    "antonio",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "Denis",
    "Diogo",
    "ed",
    "edward",
    "Gene",
    "grandma",
    "grandpa",
    "gustave",
    "Henrique",
    "Hugo",
    "iven",
    "iven2",
    "Jacky",
    "john",
    "kaukovalta",
    "Lee",
    "linda",
    "Marco",
    "Mario",
    "max",
    "Michael",
    "michel",
    "miguel",
    "Mike",
    "norbert",
    "Nguyen",
    "pablo",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "shelby",
    "steph",
    "Storm",
    "travis",
    "victor",
    "zac",
)
POOL_FLITE = ("awb", "rms")

# For each size: utterances per train speaker, per dev/test speaker, pool speakers, utterances per pool speaker.
CORPUS_SIZES = {
    "tiny": (2, 2, 4, 2),
    "small": (16, 10, 40, 20),
    "default": (44, 30, 80, 48),
}


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: a voice with its own speaking rate and pitch."""

    spk_id: str
    engine: str
    voice: str
    split: str
    rate: float  # espeak-ng: words per minute; flite: duration stretch
    pitch: float  # espeak-ng: 0-99; flite: mean F0 in Hz
    level_dbfs: float  # speech level (RMS, dB below full scale)
    noise_dbfs: float  # level of the recording's white noise floor


@dataclass(frozen=True)
class PlannedUtterance:
    """One line of the plan: who says what, with the utterance's own rate."""

    utt_id: str
    engine: str
    voice: str
    rate: float
    pitch: float
    level_dbfs: float
    noise_dbfs: float
    text: str

    def to_line(self) -> str:
        return (
            f"{self.utt_id} {self.engine} {self.voice} {self.rate:.3f} {self.pitch:.1f} "
            f"{self.level_dbfs:.1f} {self.noise_dbfs:.1f} {self.text}"
        )

    @classmethod
    def from_line(cls, line: str) -> "PlannedUtterance":
        utt_id, engine, voice, rate, pitch, level, noise, text = line.split(maxsplit=7)
        return cls(utt_id, engine, voice, float(rate), float(pitch), float(level), float(noise), text)


def _voice_settings(rng: random.Random, engine: str, voice: str):
    """``(rate, pitch, level_dbfs, noise_dbfs)`` of a new speaker of ``voice``."""
    if engine == "espeak":
        rate, pitch = rng.uniform(135.0, 195.0), rng.uniform(25.0, 75.0)
    else:
        base_f0 = 170.0 if voice == "slt" else 105.0
        rate, pitch = rng.uniform(0.85, 1.2), base_f0 * rng.uniform(0.85, 1.2)
    return rate, pitch, rng.uniform(-30.0, -24.0), rng.uniform(-62.0, -56.0)


def make_speakers(seed: int, pool_speakers: int = 0) -> List[Speaker]:
    """Every voice of :data:`VOICES`, then ``pool_speakers`` pool voices, each with a rate and pitch drawn from ``seed``.

    The labelled speakers do not depend on ``pool_speakers``.
    """
    rng = random.Random(f"speakers-{seed}")
    speakers = []
    counters = {"espeak": 0, "flite": 0}
    for engine, voice, split in VOICES:
        counters[engine] += 1
        speakers.append(
            Speaker(f"{engine}{counters[engine]:02d}", engine, voice, split, *_voice_settings(rng, engine, voice))
        )
    return speakers + _pool_speakers(seed, pool_speakers)


def _pool_speakers(seed: int, count: int) -> List[Speaker]:
    """``count`` pool speakers: one flite rendition in 16, the rest espeak-ng pairs never used in train."""
    rng = random.Random(f"pool-speakers-{seed}")
    used = {voice for engine, voice, _ in VOICES if engine == "espeak"}
    pairs = [f"{accent}+{variant}" for accent in POOL_ACCENTS for variant in POOL_VARIANTS]
    pairs = [p for p in pairs if p not in used]
    rng.shuffle(pairs)
    espeak_pairs = iter(pairs * (1 + count // len(pairs)))
    voices = [
        ("flite", POOL_FLITE[(index // 16) % len(POOL_FLITE)]) if index % 16 == 15 else ("espeak", next(espeak_pairs))
        for index in range(count)
    ]
    return [
        Speaker(f"pool{index + 1:03d}", engine, voice, POOL_SET, *_voice_settings(rng, engine, voice))
        for index, (engine, voice) in enumerate(voices)
    ]


def plan_corpus(sentences: Sequence[str], size: str = "default", seed: int = 1) -> Dict[str, List[PlannedUtterance]]:
    """Assign sentences to speakers; return the planned utterances of each split.

    Each split draws from its own share of the sentences, so dev and test
    sentences never occur in train; no sentence is spoken twice.
    """
    if size not in CORPUS_SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose from {sorted(CORPUS_SIZES)}")
    per_train_spk, per_eval_spk, pool_speakers, per_pool_spk = CORPUS_SIZES[size]
    per_speaker = {"train": per_train_spk, "dev": per_eval_spk, "test": per_eval_spk, POOL_SET: per_pool_spk}
    speakers = make_speakers(seed, pool_speakers)
    needed = {split: sum(1 for s in speakers if s.split == split) * per_speaker[split] for split in SPLITS}
    if sum(needed.values()) > len(sentences):
        raise ValueError(f"corpus size {size!r} needs {sum(needed.values())} sentences, have {len(sentences)}")
    rng = random.Random(f"sentences-{seed}")
    pool = sorted(set(sentences))
    rng.shuffle(pool)
    plan: Dict[str, List[PlannedUtterance]] = {}
    start = 0
    for split in SPLITS:
        split_sentences = iter(pool[start : start + needed[split]])
        start += needed[split]
        count = per_speaker[split]
        plan[split] = []
        for speaker in (s for s in speakers if s.split == split):
            for index in range(1, count + 1):
                jitter = rng.uniform(0.93, 1.07)  # small per-utterance variation of tempo
                rate = speaker.rate * jitter if speaker.engine == "espeak" else speaker.rate / jitter
                plan[split].append(
                    PlannedUtterance(
                        f"{speaker.spk_id}-{index:04d}",
                        speaker.engine,
                        speaker.voice,
                        rate,
                        speaker.pitch,
                        speaker.level_dbfs,
                        speaker.noise_dbfs,
                        next(split_sentences),
                    )
                )
    return plan


def default_sentences() -> List[str]:
    """Normalized sentences of the Debian ``fortunes`` files."""
    paths = [FORTUNE_DIR / name for name in FORTUNE_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"text source missing: {', '.join(missing)} (install the Debian package 'fortunes' with tools/install.sh)"
        )
    return sentences_from_files(paths)


def write_plan(plan: Dict[str, List[PlannedUtterance]], path: PathLike) -> None:
    """Write all splits' utterances, one line each, sorted by utterance id."""
    lines = {u.utt_id: u.to_line().split(maxsplit=1)[1] for utts in plan.values() for u in utts}
    write_kaldi_map(path, lines)


def read_plan(path: PathLike) -> List[PlannedUtterance]:
    return [PlannedUtterance.from_line(f"{k} {v}") for k, v in read_kaldi_map(path).items()]


def _synth_command(utt: PlannedUtterance, raw_wav: Path) -> List[str]:
    if utt.engine == "espeak":
        return [
            "espeak-ng",
            "-v",
            utt.voice,
            "-s",
            str(int(round(utt.rate))),
            "-p",
            str(int(round(utt.pitch))),
            "-w",
            str(raw_wav),
            utt.text,
        ]
    if utt.engine == "flite":
        return [
            "flite",
            "-voice",
            utt.voice,
            "--setf",
            f"duration_stretch={utt.rate:.3f}",
            "--setf",
            f"int_f0_target_mean={utt.pitch:.1f}",
            "-t",
            utt.text,
            "-o",
            str(raw_wav),
        ]
    raise ValueError(f"utterance {utt.utt_id!r}: unknown engine {utt.engine!r}")


def _run(command: List[str], utt_id: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"utterance {utt_id!r}: {shlex.join(command)} failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )


RUMBLE_ABOVE_NOISE_DB = 15.0  # low-frequency room noise, relative to the white floor
RUMBLE_CUTOFF_HZ = 150.0


def _dbfs_to_rms(dbfs: float) -> float:
    return 32768.0 * 10.0 ** (dbfs / 20.0)


def simulate_recording(speech: np.ndarray, utt: PlannedUtterance) -> np.ndarray:
    """Turn clean synthesized speech into what a microphone in a room records.

    The speech (float, any scale) is set to the speaker's level, padded with
    0.1-0.3 s at each end, and mixed with a white noise floor plus
    low-frequency room noise (below 150 Hz, 15 dB above the floor).  Returns
    int16 samples.  Synthesized speech alone has digital silence and almost
    no energy in the lowest mel bins; there float32 Kaldi implementations
    disagree by up to 1e-2 in log energy, and silent frames sit at
    log(FLT_EPSILON).  Everything random is seeded by the plan line.
    """
    rng = np.random.default_rng(zlib.crc32(utt.to_line().encode("utf-8")))
    speech = np.asarray(speech, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(speech))))
    if rms == 0.0:
        raise RuntimeError(f"utterance {utt.utt_id!r}: {utt.engine} produced silence")
    lead, trail = (int(SAMPLE_RATE * rng.uniform(0.1, 0.3)) for _ in range(2))
    signal = np.concatenate([np.zeros(lead), speech * (_dbfs_to_rms(utt.level_dbfs) / rms), np.zeros(trail)])
    white = rng.standard_normal(signal.shape[0]) * _dbfs_to_rms(utt.noise_dbfs)
    b, a = butter(2, RUMBLE_CUTOFF_HZ / (SAMPLE_RATE / 2))
    settle = SAMPLE_RATE // 4  # drop the filter's start-up transient
    rumble = lfilter(b, a, rng.standard_normal(signal.shape[0] + settle))[settle:]
    rumble *= _dbfs_to_rms(utt.noise_dbfs + RUMBLE_ABOVE_NOISE_DB) / np.std(rumble)
    return np.clip(np.round(signal + white + rumble), -32768, 32767).astype(np.int16)


def synthesize_one(utt: PlannedUtterance, wav_path: Path) -> None:
    """Render one utterance to 16 kHz mono 16-bit WAV at ``wav_path`` (atomically)."""
    with tempfile.TemporaryDirectory(dir=wav_path.parent) as tmp:
        raw = Path(tmp) / "raw.wav"
        resampled = Path(tmp) / "resampled.wav"
        out = Path(tmp) / "out.wav"
        _run(_synth_command(utt, raw), utt.utt_id)
        # Resample to float samples (no clipping, no dither); the level is set afterwards.
        _run(
            ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-e", "floating-point", "-b", "32", str(resampled)],
            utt.utt_id,
        )
        speech, _ = soundfile.read(str(resampled), dtype="float64")
        if speech.shape[0] == 0:
            raise RuntimeError(f"utterance {utt.utt_id!r}: {utt.engine} produced no audio")
        _check_speaking_rate(utt, speech.shape[0] / SAMPLE_RATE)
        soundfile.write(str(out), simulate_recording(speech, utt), SAMPLE_RATE, subtype="PCM_16")
        os.replace(out, wav_path)


MAX_CHARS_PER_SECOND = 30.0  # about twice the fastest speaking rate of the corpus


def _check_speaking_rate(utt: PlannedUtterance, seconds: float) -> None:
    """Refuse audio far too short for its text: the voice did not say it."""
    if len(utt.text) / max(seconds, 1e-3) > MAX_CHARS_PER_SECOND:
        raise RuntimeError(
            f"utterance {utt.utt_id!r}: {utt.engine} voice {utt.voice!r} gave {seconds:.2f} s of audio for "
            f"{len(utt.text)} characters; the voice did not say the text"
        )


def synthesize(plan_path: PathLike, wav_dir: PathLike) -> int:
    """Render every utterance of a plan file that has no valid WAV yet.

    Returns the number of files rendered.
    """
    wav_dir = Path(wav_dir)
    missing_tools = [t for t in ("espeak-ng", "flite", "sox") if shutil.which(t) is None]
    if missing_tools:
        raise FileNotFoundError(f"missing programs: {' '.join(missing_tools)} (run tools/install.sh)")
    rendered = 0
    for utt in tqdm(read_plan(plan_path), desc=f"synthesizing {plan_path}", mininterval=10):
        spk_dir = wav_dir / utt.utt_id.split("-")[0]
        spk_dir.mkdir(parents=True, exist_ok=True)
        wav_path = spk_dir / f"{utt.utt_id}.wav"
        if wav_path.is_file():
            continue
        synthesize_one(utt, wav_path)
        rendered += 1
    return rendered


def write_data_dirs(plan_path: PathLike, wav_dir: PathLike, data_root: PathLike, seed: int = 1) -> Dict[str, float]:
    """Write Kaldi data dirs of every split and the low-resource subset.

    Every WAV is checked (readable, 16 kHz, mono, not empty).  Returns the
    hours of audio of each data dir.
    """
    wav_dir, data_root = Path(wav_dir).resolve(), Path(data_root)
    plan = read_plan(plan_path)
    pool_speakers = len({u.utt_id.split("-")[0] for u in plan if u.utt_id.startswith(POOL_SET)})
    speakers = {s.spk_id: s for s in make_speakers(seed, pool_speakers)}
    tables: Dict[str, Dict[str, Dict[str, str]]] = {
        split: {"wav.scp": {}, "text": {}, "utt2spk": {}, "utt2dur": {}} for split in SPLITS
    }
    for utt in plan:
        spk_id = utt.utt_id.split("-")[0]
        if spk_id not in speakers:
            raise DataDirError(f"{plan_path}: utterance {utt.utt_id!r} of unknown speaker {spk_id!r}")
        wav_path = wav_dir / spk_id / f"{utt.utt_id}.wav"
        samples, _ = read_audio(utt.utt_id, str(wav_path), expected_rate=SAMPLE_RATE)
        table = tables[speakers[spk_id].split]
        table["wav.scp"][utt.utt_id] = str(wav_path)
        table["text"][utt.utt_id] = utt.text
        table["utt2spk"][utt.utt_id] = spk_id
        table["utt2dur"][utt.utt_id] = f"{samples.shape[0] / SAMPLE_RATE:.3f}"
    tables[LOW_RESOURCE_SET] = _low_resource_subset(tables["train"], seed)
    # The pool is unlabelled: its transcripts exist only to synthesize it.
    del tables[POOL_SET]["text"]
    tables[SSL_SET] = {name: {**tables[POOL_SET][name], **tables["train"][name]} for name in tables[POOL_SET]}
    hours = {}
    for name, table in tables.items():
        _write_data_dir(data_root / name, table)
        hours[name] = sum(float(d) for d in table["utt2dur"].values()) / 3600.0
    return hours


def _low_resource_subset(train: Dict[str, Dict[str, str]], seed: int) -> Dict[str, Dict[str, str]]:
    """About 10% of the train utterances, at least one of every speaker."""
    rng = random.Random(f"low-resource-{seed}")
    spk2utt = utt2spk_to_spk2utt(train["utt2spk"])
    chosen = set()
    for utts in spk2utt.values():
        count = max(1, round(LOW_RESOURCE_FRACTION * len(utts)))
        chosen.update(rng.sample(utts, count))
    return {name: {u: v for u, v in table.items() if u in chosen} for name, table in train.items()}


def _write_data_dir(data_dir: Path, tables: Dict[str, Dict[str, str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("feats.scp", "utt2num_frames", "feats_stats.npz", "cmvn.ark"):
        if (data_dir / stale).exists():
            (data_dir / stale).unlink()
    for name, table in tables.items():
        write_kaldi_map(data_dir / name, table)
    write_spk2utt(data_dir / "spk2utt", utt2spk_to_spk2utt(tables["utt2spk"]))


def describe_speakers(seed: int, path: Optional[PathLike] = None, pool_speakers: int = 0) -> str:
    """A ``spk2voice`` table: speaker id, split, engine, voice, rate and pitch."""
    lines = [
        f"{s.spk_id} {s.split} {s.engine} {s.voice} rate={s.rate:.3f} pitch={s.pitch:.1f} "
        f"level_dbfs={s.level_dbfs:.1f} noise_dbfs={s.noise_dbfs:.1f}"
        for s in make_speakers(seed, pool_speakers)
    ]
    text = "\n".join(lines) + "\n"
    if path is not None:
        with atomic_write(path) as f:
            f.write(text)
    return text
