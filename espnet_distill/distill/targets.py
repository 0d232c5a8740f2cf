"""Stored teacher targets: run the teacher once over a data set, distill many students from the files.

A dump dir holds the targets of one data set (e.g. ``dump/teacher_targets/ssl``)::

    manifest.json      what the targets are: the teacher (SHA-256 of its weights and of its file,
                       format, conf), the layers, the codeword logits (top-k), the precision, the
                       audio (SHA-256 of wav.scp, utterances, samples, hours), the teacher's frame
                       geometry and the storage; written last, when every shard is complete
    spec.json          the same without the results, written first: a resumed dump must match it
    shards/00000/      one shard: <name>.npy (its utterances' frames, concatenated) and index.tsv
                       (utterance, first frame, frames, samples); it appears by renaming a
                       temporary dir when complete, so a killed dump redoes at most one shard
    <name>.scp         "<utt> <shard> <first frame> <frames>" for each stored name: what ESPnet's
                       data loader reads as type ``teacher_targets``

The stored names (arrays of one utterance, ``frames`` rows):

- ``teacher_hidden``: ``(frames, layers, dim)``, the manifest's ``layers`` in order (0: the input
  of the first Transformer layer, ``i``: the output of layer ``i``);
- ``teacher_projected``: ``(frames, dim)``, the projected CNN features (stage A of front-end
  distillation), when a student needs them;
- ``teacher_logits``: ``(frames, codewords)``, every codeword logit in order (before the KL's
  temperature; any student temperature can use them), when ``k`` is the codeword count;
- ``teacher_topk_logprob`` and ``teacher_topk_index``: ``(frames, k)`` each, else: the
  log-probabilities (at the students' temperature, of the full softmax) of each frame's k most
  likely codewords and their ids; the KL then merges the other codewords into one outcome
  (:func:`~espnet_distill.losses.discriminative.codeword_kl_topk`).

Nothing is unpickled: shards are read with ``numpy.load(allow_pickle=False)`` (memory-mapped).
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_distill import seams
from espnet_distill.data.audio import read_audio
from espnet_distill.data.collate import PadCollate
from espnet_distill.data.kaldi_dir import read_wav_scp
from espnet_distill.frontend.conv import extractor_layers
from espnet_distill.utils.fileio import atomic_write, sha256_file

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
FORMAT_VERSION = 1
NAMES = ("teacher_hidden", "teacher_projected", "teacher_logits", "teacher_topk_logprob", "teacher_topk_index")
DTYPES = ("float16", "float32")


class TargetsError(ValueError):
    """Stored targets that cannot be used: missing, incomplete, damaged, or of another teacher or audio."""


@dataclass
class TargetSpec:
    """What a dump stores: the union of what the students distilled from it need."""

    layers: List[int]
    projected: bool = False
    # {"source": "head" | "codebook <sha256> layer <n>", "num": K, "k": k, "temperature": tau (top k only)}
    codewords: Optional[Dict] = None
    dtype: str = "float16"

    @property
    def dense_codewords(self) -> bool:
        return self.codewords is not None and self.codewords["k"] >= self.codewords["num"]

    def names(self) -> List[str]:
        names = ["teacher_hidden"]
        if self.projected:
            names.append("teacher_projected")
        if self.codewords is not None:
            names += ["teacher_logits"] if self.dense_codewords else ["teacher_topk_logprob", "teacher_topk_index"]
        return names


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, values), whatever file held them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {array.dtype} {tuple(array.shape)}\n".encode())
        digest.update(array.view(torch.uint8).numpy().tobytes() if array.numel() else b"")
    return digest.hexdigest()


def teacher_identity(teacher, teacher_format: str, teacher_conf: Mapping) -> Dict:
    """The teacher as a manifest records it: its weights' SHA-256 (what is checked), and its file's."""
    identity = {
        "weights_sha256": weights_sha256(teacher),
        "format": teacher_format,
        "conf": {k: v for k, v in teacher_conf.items() if k != "sha256"},
    }
    path = teacher_conf.get("path")
    if path is not None and Path(path).is_file():
        identity["file_sha256"] = sha256_file(path)
    return identity


def frame_geometry(teacher) -> Dict:
    """The teacher's CNN: ``(kernel, stride)`` of each layer, the frame stride and receptive field in samples."""
    layers = [(kernel, stride) for _, kernel, stride in extractor_layers(teacher.model.feature_extractor)]
    stride, field_ = 1, 1
    for kernel, layer_stride in layers:
        field_ += (kernel - 1) * stride
        stride *= layer_stride
    return {"conv": [list(layer) for layer in layers], "stride": stride, "receptive_field": field_}


def conv_frames(num_samples: torch.Tensor, conv: Sequence[Sequence[int]]) -> torch.Tensor:
    """Frames the teacher's CNN gives for ``num_samples`` (as :func:`~espnet_distill.frontend.conv.conv_features`)."""
    frames = num_samples
    for kernel, stride in conv:
        frames = torch.clamp(torch.div(frames - kernel, stride, rounding_mode="floor") + 1, min=0)
    return frames


def spec_of_models(models: Sequence, dtype: str = "float16", topk: Optional[int] = None) -> TargetSpec:
    """The targets that every one of ``models`` (:class:`~espnet_distill.distill.model.DistillModel`) needs."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    layers = sorted({layer for model in models for layer in model.heads.teacher_layers})
    projected = any(model.frontend_steps > 0 for model in models)
    sources = {model.codeword_source() for model in models if model.codeword_head is not None}
    codewords = None
    if len(sources) > 1:
        raise ValueError(f"the students' KL losses use different codewords ({sorted(sources)}): dump them apart")
    if sources:
        model = next(m for m in models if m.codeword_head is not None)
        num = model.num_codewords()
        k = num if topk is None or topk <= 0 else min(int(topk), num)
        codewords = {"source": sources.pop(), "num": num, "k": k}
        if k < num:
            temperatures = {float(m.temperature) for m in models if m.codeword_head is not None}
            if len(temperatures) > 1:
                raise ValueError(
                    f"top-k codeword targets are stored at one temperature; the students use {sorted(temperatures)}: "
                    "dump them apart, or store every logit (topk 0)"
                )
            codewords["temperature"] = temperatures.pop()
    return TargetSpec(layers=layers, projected=projected, codewords=codewords, dtype=dtype)


def _utterance_batches(lengths: Mapping[str, int], batch_samples: int) -> Iterator[List[str]]:
    """Utterances by length, at most ``batch_samples`` of padded audio a batch (one at least)."""
    batch: List[str] = []
    for utt in sorted(lengths, key=lambda u: lengths[u]):
        if batch and lengths[utt] * (len(batch) + 1) > batch_samples:
            yield batch
            batch = []
        batch.append(utt)
    if batch:
        yield batch


def teacher_arrays(
    model, waveforms: torch.Tensor, lengths: torch.Tensor, spec: TargetSpec
) -> Tuple[Dict, torch.Tensor]:
    """The stored names of one padded batch, from the teacher of ``model`` (a DistillModel): float32
    tensors ``(batch, frames, ...)`` (int64 for ``teacher_index``), and the frame counts."""
    out = model.teacher(waveforms, lengths)
    arrays = {"teacher_hidden": torch.stack([out.hidden_states[layer] for layer in spec.layers], dim=2)}
    if spec.projected:
        projected, _ = model.teacher.projected_features(waveforms, lengths)
        arrays["teacher_projected"] = projected
    if spec.codewords is not None:
        logits = model.teacher_codeword_logits(out).float()
        if spec.dense_codewords:
            arrays["teacher_logits"] = logits
        else:
            log_probs = torch.log_softmax(logits / spec.codewords["temperature"], dim=-1)
            values, index = log_probs.topk(spec.codewords["k"], dim=-1)
            arrays["teacher_topk_logprob"] = values
            arrays["teacher_topk_index"] = index
        arrays["_full_logits"] = logits  # for the residual mass; not stored
    return arrays, out.lengths


def _index_dtype(num_codewords: int):
    return np.int16 if num_codewords <= np.iinfo(np.int16).max else np.int32


def _to_storage(name: str, array: torch.Tensor, spec: TargetSpec, utt: str) -> np.ndarray:
    if name == "teacher_topk_index":
        return array.cpu().numpy().astype(_index_dtype(spec.codewords["num"]))
    stored = array.float().cpu().numpy().astype(spec.dtype)
    if not np.isfinite(stored).all():
        raise TargetsError(
            f"utterance {utt!r}: the teacher's {name} does not fit {spec.dtype} (values up to "
            f"{float(array.abs().max()):.4g}); dump with --dtype float32"
        )
    return stored


class ResidualMass:
    """The codeword probability mass outside the stored top k, at the students' temperature."""

    def __init__(self, temperature: float, k: int) -> None:
        self.temperatures = [float(temperature)]
        self.k = k
        self.sums = {t: 0.0 for t in self.temperatures}
        self.maxima = {t: 0.0 for t in self.temperatures}
        self.frames = 0

    def add(self, full_logits: torch.Tensor, valid: torch.Tensor) -> None:
        for t in self.temperatures:
            top = torch.softmax(full_logits.float() / t, dim=-1).topk(self.k, dim=-1).values.sum(-1)
            residual = (1.0 - top)[valid]
            if residual.numel():
                self.sums[t] += float(residual.sum())
                self.maxima[t] = max(self.maxima[t], float(residual.max()))
        self.frames += int(valid.sum())

    def state(self) -> Dict:
        return {
            "frames": self.frames,
            "sums": {f"{t:g}": v for t, v in self.sums.items()},
            "maxima": {f"{t:g}": v for t, v in self.maxima.items()},
        }

    @staticmethod
    def summary(states: Sequence[Dict]) -> Dict[str, Dict[str, float]]:
        """Mean and maximum over every shard's :meth:`state`."""
        frames = sum(s["frames"] for s in states)
        temps = states[0]["sums"] if states else {}
        return {
            t: {"mean": sum(s["sums"][t] for s in states) / max(frames, 1), "max": max(s["maxima"][t] for s in states)}
            for t in temps
        }


@dataclass
class DumpResult:
    manifest: Dict
    shards_done: int = 0
    shards_skipped: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0


def _spec_record(
    spec: TargetSpec, teacher: Dict, geometry: Dict, wav_scp: Path, num_utts: int, shard_utts: int
) -> Dict:
    return {
        "format_version": FORMAT_VERSION,
        "teacher": teacher,
        "targets": asdict(spec),
        "names": spec.names(),
        "geometry": geometry,
        "audio": {"wav_scp": str(wav_scp), "wav_scp_sha256": sha256_file(wav_scp), "utterances": num_utts},
        "shard_utts": shard_utts,
    }


def _same_spec(a: Dict, b: Dict) -> bool:
    def key(record: Dict) -> Dict:  # the teacher's conf may name the same file by another path
        record = json.loads(json.dumps(record))
        record["teacher"].pop("conf", None)
        record["audio"].pop("wav_scp", None)
        return record

    return key(a) == key(b)


def _open_dump_dir(out_dir: Path, record: Dict) -> Path:
    """The dump dir of ``record`` (its ``spec.json``), ready to (re)write shards; another dump's is refused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    if spec_path.is_file():
        earlier = json.loads(spec_path.read_text())
        if not _same_spec(earlier, record):
            raise TargetsError(
                f"{out_dir} holds targets of another teacher, layer set or audio ({spec_path}); "
                "remove the dir or dump elsewhere"
            )
        logger.info("%s: resuming the dump (%s)", out_dir, spec_path)
    else:
        with atomic_write(spec_path) as f:
            json.dump(record, f, indent=2)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    shard_root = out_dir / "shards"
    shard_root.mkdir(exist_ok=True)
    for stale in shard_root.glob("*.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    return shard_root


def _dump_shard(
    model, spec: TargetSpec, writer: "_ShardWriter", audio: Dict[str, np.ndarray], batch_samples: int, device: str
) -> float:
    """Run the teacher over one shard's audio (by length, in batches) into ``writer``; the seconds of audio."""
    samples = {utt: len(a) for utt, a in audio.items()}
    topk = spec.codewords is not None and not spec.dense_codewords
    residual = ResidualMass(spec.codewords["temperature"], spec.codewords["k"]) if topk else None
    seconds = 0.0
    for batch in _utterance_batches(samples, batch_samples):
        lengths = torch.tensor([samples[u] for u in batch])
        waves = torch.zeros(len(batch), int(lengths.max()))
        for i, utt in enumerate(batch):
            waves[i, : lengths[i]] = torch.from_numpy(audio.pop(utt))
        with torch.no_grad():
            arrays, frames = teacher_arrays(model, waves.to(device), lengths.to(device), spec)
        if residual is not None:
            valid = torch.arange(arrays["_full_logits"].shape[1], device=device)[None] < frames[:, None]
            residual.add(arrays["_full_logits"], valid)
        for i, utt in enumerate(batch):
            writer.put(utt, int(frames[i]), {key: arrays[key][i] for key in spec.names()})
        seconds += float(lengths.sum()) / 16000
    writer.finish({"residual": residual.state()} if residual is not None else {})
    return seconds


def dump_targets(
    model,
    teacher_format: str,
    teacher_conf: Mapping,
    spec: TargetSpec,
    wav_scp: PathLike,
    out_dir: PathLike,
    shard_utts: int = 256,
    batch_seconds: float = 16.0,
    device: str = "cpu",
) -> DumpResult:
    """Run the teacher of ``model`` over ``wav_scp`` and store ``spec``'s targets in ``out_dir``.

    Resumable: complete shards are kept; a shard being written when the dump was killed is redone.
    A dir holding a dump of another teacher, spec or audio is refused by name.
    """
    wav_scp, out_dir = Path(wav_scp), Path(out_dir)
    start = time.perf_counter()
    entries = read_wav_scp(wav_scp)
    utts = list(entries)
    geometry = frame_geometry(model.teacher)
    teacher = teacher_identity(model.teacher, teacher_format, teacher_conf)
    record = _spec_record(spec, teacher, geometry, wav_scp, len(utts), shard_utts)
    shard_root = _open_dump_dir(out_dir, record)
    model.eval()
    model.teacher.to(device)
    result = DumpResult(manifest={})
    num_shards = (len(utts) + shard_utts - 1) // shard_utts
    for shard in range(num_shards):
        name = f"{shard:05d}"
        if (shard_root / name / "index.tsv").is_file():
            result.shards_skipped += 1
            continue
        shard_utt_ids = utts[shard * shard_utts : (shard + 1) * shard_utts]
        audio = {utt: read_audio(utt, entries[utt])[0] for utt in shard_utt_ids}
        writer = _ShardWriter(
            shard_root, name, shard_utt_ids, {u: len(a) for u, a in audio.items()}, spec, geometry["conv"]
        )
        result.audio_seconds += _dump_shard(model, spec, writer, audio, int(batch_seconds * 16000), device)
        result.shards_done += 1
        logger.info("%s: shard %d of %d written", out_dir, shard + 1, num_shards)
    manifest = _finish(out_dir, record, spec, num_shards, utts)
    if spec.codewords is not None and not spec.dense_codewords:
        states = [
            json.loads((shard_root / f"{i:05d}" / "stats.json").read_text())["residual"] for i in range(num_shards)
        ]
        manifest["topk_residual_mass"] = ResidualMass.summary(states)
    manifest["dump_seconds"] = time.perf_counter() - start
    with atomic_write(out_dir / "manifest.json") as f:
        json.dump(manifest, f, indent=2)
    model.teacher.cpu()
    result.manifest = manifest
    result.seconds = manifest["dump_seconds"]
    return result


class _ShardWriter:
    """One shard, written into memory-mapped ``.npy`` files of a temporary dir (the teacher's outputs never
    gather in memory), then renamed into place by :meth:`finish`."""

    def __init__(
        self, root: Path, name: str, utts: Sequence[str], samples: Dict[str, int], spec: TargetSpec, conv
    ) -> None:
        self.root, self.name, self.utts, self.samples, self.spec = root, name, list(utts), samples, spec
        frames = conv_frames(torch.tensor([samples[u] for u in utts]), conv).tolist()
        for utt, n in zip(utts, frames):
            if n < 1:
                raise TargetsError(f"utterance {utt!r} ({samples[utt]} samples) is shorter than one teacher frame")
        self.frames = dict(zip(utts, frames))
        self.first = dict(zip(utts, np.cumsum([0, *frames[:-1]]).tolist()))
        self.tmp = root / f"{name}.tmp{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.arrays: Dict[str, np.ndarray] = {}
        self.written = set()
        self.total = sum(frames)

    def _array(self, key: str, row: torch.Tensor) -> np.ndarray:
        if key not in self.arrays:
            dtype = _index_dtype(self.spec.codewords["num"]) if key == "teacher_topk_index" else self.spec.dtype
            self.arrays[key] = np.lib.format.open_memmap(
                self.tmp / f"{key}.npy", mode="w+", dtype=dtype, shape=(self.total, *row.shape[1:])
            )
        return self.arrays[key]

    def put(self, utt: str, frames: int, arrays: Dict[str, torch.Tensor]) -> None:
        """One utterance's rows (``frames`` valid ones at the start of each array)."""
        if frames != self.frames[utt]:
            raise TargetsError(
                f"utterance {utt!r}: the teacher gave {frames} frames for {self.samples[utt]} samples, "
                f"its CNN's formula {self.frames[utt]}"
            )
        first = self.first[utt]
        for key, array in arrays.items():
            self._array(key, array)[first : first + frames] = _to_storage(key, array[:frames], self.spec, utt)
        self.written.add(utt)

    def finish(self, stats: Dict) -> None:
        missing = [u for u in self.utts if u not in self.written]
        if missing:
            raise TargetsError(f"shard {self.name}: no targets of {missing[:3]}")
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()
        with open(self.tmp / "index.tsv", "w", encoding="utf-8") as f:
            for utt in self.utts:
                f.write(f"{utt}\t{self.first[utt]}\t{self.frames[utt]}\t{self.samples[utt]}\n")
        (self.tmp / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
        os.replace(self.tmp, self.root / self.name)


def _finish(out_dir: Path, record: Dict, spec: TargetSpec, num_shards: int, utts: Sequence[str]) -> Dict:
    """The scp files of every stored name, and the manifest's totals."""
    lines: List[str] = []
    samples = frames = 0
    seen = set()
    for shard in range(num_shards):
        name = f"{shard:05d}"
        for row in (out_dir / "shards" / name / "index.tsv").read_text(encoding="utf-8").splitlines():
            utt, first, count, num_samples = row.split("\t")
            lines.append(f"{utt} {name} {first} {count}\n")
            seen.add(utt)
            samples += int(num_samples)
            frames += int(count)
    if seen != set(utts):
        raise TargetsError(f"{out_dir}: the shards hold {len(seen)} of {len(utts)} utterances; dump again")
    for key in spec.names():
        with atomic_write(out_dir / f"{key}.scp") as f:
            f.writelines(lines)
    sizes = {
        key: sum((out_dir / "shards" / f"{s:05d}" / f"{key}.npy").stat().st_size for s in range(num_shards))
        for key in spec.names()
    }
    hours = samples / 16000 / 3600
    return {
        **record,
        "complete": True,
        "shards": num_shards,
        "frames": frames,
        "audio_hours": hours,
        "bytes": sizes,
        "bytes_per_hour": {key: size / hours for key, size in sizes.items()} if hours else None,
    }


# --- Reading -----------------------------------------------------------------------------


def read_manifest(out_dir: PathLike) -> Dict:
    """The manifest of a complete dump; a :class:`TargetsError` naming the dir otherwise."""
    out_dir = Path(out_dir)
    path = out_dir / "manifest.json"
    if not path.is_file():
        hint = " (the dump did not finish: run it again to resume)" if (out_dir / "spec.json").is_file() else ""
        raise TargetsError(f"{out_dir}: no stored teacher targets, {path.name} is missing{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TargetsError(f"{path}: not a targets manifest: {e}") from e
    if (
        not isinstance(manifest, dict)
        or manifest.get("format_version") != FORMAT_VERSION
        or not manifest.get("complete")
    ):
        raise TargetsError(f"{path}: not a complete targets manifest of format version {FORMAT_VERSION}")
    problem = _manifest_problem(manifest)
    if problem:
        raise TargetsError(f"{path}: not a targets manifest: {problem}")
    return manifest


def _manifest_problem(manifest: Dict) -> Optional[str]:
    """What is wrong with a manifest's fields, or None."""
    try:
        spec = TargetSpec(**manifest["targets"])
        if not spec.layers or not all(isinstance(layer, int) and layer >= 0 for layer in spec.layers):
            return f"targets.layers {spec.layers!r} must be teacher layers"
        if spec.dtype not in DTYPES:
            return f"targets.dtype {spec.dtype!r} must be one of {DTYPES}"
        if spec.codewords is not None and not (
            isinstance(spec.codewords.get("num"), int) and isinstance(spec.codewords.get("k"), int)
        ):
            return "targets.codewords needs integer num and k"
        if manifest["names"] != spec.names():
            return f"names {manifest['names']!r} are not those of its targets ({spec.names()})"
        geometry = manifest["geometry"]
        conv = geometry["conv"]
        if not conv or not all(len(c) == 2 and all(isinstance(v, int) and v > 0 for v in c) for c in conv):
            return f"geometry.conv {conv!r} must be (kernel, stride) pairs"
        if not isinstance(geometry["stride"], int) or geometry["stride"] < 1:
            return f"geometry.stride {geometry['stride']!r} must be a positive integer"
        for key in ("weights_sha256", "format", "conf"):
            manifest["teacher"][key]
        manifest["audio"]["wav_scp_sha256"]
    except (KeyError, TypeError, AttributeError) as e:
        return f"a missing or malformed field ({type(e).__name__}: {e})"
    return None


def spec_of_manifest(manifest: Dict) -> TargetSpec:
    return TargetSpec(**manifest["targets"])


class TargetsReader(Mapping):
    """``<name>.scp`` of a dump as ESPnet's data loaders read a data type: ``reader[utt]`` is the array."""

    def __init__(self, scp: PathLike) -> None:
        self.scp = Path(scp)
        self.name = self.scp.stem
        self.root = self.scp.parent / "shards"
        self.index: Dict[str, Tuple[str, int, int]] = {}
        try:
            for number, line in enumerate(self.scp.read_text(encoding="utf-8").splitlines(), 1):
                fields = line.split()
                if len(fields) != 4 or not fields[1].isdigit() or not (fields[2] + fields[3]).isdigit():
                    raise TargetsError(f"{self.scp}:{number}: expected '<utt> <shard> <first> <frames>', got {line!r}")
                self.index[fields[0]] = (fields[1], int(fields[2]), int(fields[3]))
        except OSError as e:
            raise TargetsError(f"{self.scp}: cannot read: {e}") from e
        self._shards: Dict[str, np.ndarray] = {}

    def _shard(self, shard: str) -> np.ndarray:
        if shard not in self._shards:
            path = self.root / shard / f"{self.name}.npy"
            try:
                self._shards[shard] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise TargetsError(f"{path}: cannot read stored targets: {e}") from e
        return self._shards[shard]

    def __getitem__(self, utt: str) -> np.ndarray:
        try:
            shard, first, frames = self.index[utt]
        except KeyError:
            raise TargetsError(f"utterance {utt!r} has no stored targets in {self.scp}") from None
        array = self._shard(shard)
        if first + frames > array.shape[0]:
            raise TargetsError(f"{self.root / shard / self.name}.npy: too short for utterance {utt!r}")
        return np.array(array[first : first + frames])

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> Dict:  # DataLoader workers: memory maps are opened again there
        return {**self.__dict__, "_shards": {}}


def collate_stored(dump_dir: PathLike, utts: Sequence[str], names: Optional[Sequence[str]] = None) -> Dict:
    """The stored targets of ``utts`` as ESPnet's data set and collate give them to the model: floats as
    float32, ints as int64, padded, with ``<name>_lengths``; ``names`` default to the dump's."""
    dump_dir = Path(dump_dir)
    if names is None:
        names = read_manifest(dump_dir)["names"]
    readers = {name: TargetsReader(dump_dir / f"{name}.scp") for name in names}
    items = []
    for utt in utts:
        arrays = {}
        for name, reader in readers.items():
            array = reader[utt]
            arrays[name] = array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int64)
        items.append((utt, arrays))
    return PadCollate()(items)[1]


def register_data_type() -> None:
    """``teacher_targets``: a data type of ESPnet's data sets (``<dump>/<name>.scp,<name>,teacher_targets``)."""
    seams.register_espnet_data_type(
        "teacher_targets", TargetsReader, "stored teacher targets (espnet_distill.distill.targets)"
    )


register_data_type()


# --- Training on stored targets ----------------------------------------------------------

_OFF = [0]


@contextlib.contextmanager
def no_stored_targets() -> Iterator[None]:
    """Models built inside run their teacher whatever their config's ``teacher_targets`` says."""
    _OFF[0] += 1
    try:
        yield
    finally:
        _OFF[0] -= 1


def stored_targets_off() -> bool:
    return _OFF[0] > 0


def dump_dir_for(root: PathLike, wav_scp: PathLike) -> Path:
    """Where the targets of a data set's ``wav.scp`` are under a dump root: ``<root>/<data dir name>``."""
    return Path(root) / Path(wav_scp).parent.name


def check_audio(manifest: Dict, dump_dir: Path, wav_scp: PathLike) -> None:
    """Refuse targets of other audio: the data set's ``wav.scp`` must be the one dumped."""
    actual = sha256_file(wav_scp)
    if actual != manifest["audio"]["wav_scp_sha256"]:
        raise TargetsError(
            f"the targets in {dump_dir} are of {manifest['audio']['wav_scp']}, not of {wav_scp} (its SHA-256 "
            f"differs): dump the teacher's targets of this data set"
        )


def check_teacher(manifest: Dict, dump_dir: Path, teacher) -> None:
    actual = weights_sha256(teacher)
    expected = manifest["teacher"]["weights_sha256"]
    if actual != expected:
        raise TargetsError(
            f"the targets in {dump_dir} are of another teacher (weights SHA-256 {expected[:16]}..., "
            f"{manifest['teacher']['format']} {manifest['teacher']['conf'].get('path')}), not of this one "
            f"({actual[:16]}...): dump them again with this teacher"
        )


def check_spec_covers(manifest: Dict, dump_dir: Path, model) -> None:
    """The dump holds what ``model`` (a DistillModel) needs: its layers, projected features, codewords."""
    spec = spec_of_manifest(manifest)
    missing = sorted(set(model.heads.teacher_layers) - set(spec.layers))
    if missing:
        raise TargetsError(
            f"the targets in {dump_dir} hold teacher layers {spec.layers}; this student needs {missing} too: "
            "dump them with this student's config"
        )
    if model.frontend_steps > 0 and not spec.projected:
        raise TargetsError(f"the targets in {dump_dir} hold no projected CNN features, which frontend_steps needs")
    if model.codeword_head is not None:
        if spec.codewords is None:
            raise TargetsError(f"the targets in {dump_dir} hold no codeword logits, which the KL loss needs")
        if spec.codewords["source"] != model.codeword_source():
            raise TargetsError(
                f"the targets in {dump_dir} hold logits of {spec.codewords['source']}; this student's KL uses "
                f"{model.codeword_source()}"
            )
        stored_temperature = spec.codewords.get("temperature")
        if stored_temperature is not None and float(stored_temperature) != float(model.temperature):
            raise TargetsError(
                f"the targets in {dump_dir} hold top-{spec.codewords['k']} codeword probabilities at temperature "
                f"{stored_temperature}; this student's KL uses {model.temperature}: dump them at its temperature"
            )


def add_data_entries(entries: List, root: PathLike, names: Sequence[str]) -> Tuple[Path, Dict]:
    """Append the stored targets of the data set of ``entries``' ``speech`` to ESPnet's
    ``*_data_path_and_name_and_type``; returns the dump dir and its manifest."""
    speech = [path for path, name, _ in entries if name == "speech"]
    if not speech:
        raise TargetsError("teacher_targets: the data has no speech entry to match the stored targets to")
    dump_dir = dump_dir_for(root, speech[0])
    manifest = read_manifest(dump_dir)
    check_audio(manifest, dump_dir, speech[0])
    present = {name for _, name, _ in entries}
    for name in names:
        if name not in present:
            entries.append((str(dump_dir / f"{name}.scp"), name, "teacher_targets"))
    return dump_dir, manifest


@dataclass
class StoredBatch:
    """A batch's stored targets, padded by ESPnet's collate: what the teacher would have returned."""

    hidden: torch.Tensor  # (batch, frames, layers, dim)
    lengths: torch.Tensor  # (batch,)
    layers: List[int]
    projected: Optional[torch.Tensor] = None  # (batch, frames, dim)
    logits: Optional[torch.Tensor] = None  # (batch, frames, codewords) logits, or the top k's log-probabilities
    index: Optional[torch.Tensor] = None  # (batch, frames, k); None: logits holds every codeword's logit

    def crop(self, first: torch.Tensor, frames: torch.Tensor) -> "StoredBatch":
        """Frames ``first[i]`` to ``first[i] + frames[i]`` of each utterance (fewer where it ends before)."""
        lengths = torch.minimum(frames, (self.lengths - first).clamp(min=0))
        width = int(lengths.max())

        def cut(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            if x is None:
                return None
            out = x.new_zeros(x.shape[0], width, *x.shape[2:])
            for i, (start, n) in enumerate(zip(first.tolist(), lengths.tolist())):
                out[i, :n] = x[i, start : start + n]
            return out

        return StoredBatch(
            cut(self.hidden), lengths, self.layers, cut(self.projected), cut(self.logits), cut(self.index)
        )

    def hidden_states(self) -> List[Optional[torch.Tensor]]:
        """Indexed by teacher layer as :class:`~espnet_distill.teacher.hubert.TeacherOutput`'s; None where not stored."""
        states: List[Optional[torch.Tensor]] = [None] * (max(self.layers) + 1)
        for position, layer in enumerate(self.layers):
            states[layer] = self.hidden[:, :, position]
        return states


def stored_batch(
    batch: Mapping[str, torch.Tensor], spec: TargetSpec, conv, speech_lengths: torch.Tensor
) -> StoredBatch:
    """The stored targets of a batch (the ``teacher_*`` entries ESPnet's loader adds), checked against the
    audio: each utterance must have the frames the teacher gives for its samples."""
    missing = [name for name in spec.names() if name not in batch]
    if missing:
        raise TargetsError(f"the batch holds no stored {missing}: train with teacher_targets set (the task adds them)")
    lengths = batch["teacher_hidden_lengths"]
    expected = conv_frames(speech_lengths, conv)
    if not torch.equal(lengths.to(expected.device), expected):
        bad = int((lengths.to(expected.device) != expected).nonzero()[0, 0])
        raise TargetsError(
            f"an utterance of {int(speech_lengths[bad])} samples has {int(lengths[bad])} stored teacher frames, "
            f"not {int(expected[bad])}: the targets are of other audio; dump them again"
        )
    return StoredBatch(
        hidden=batch["teacher_hidden"],
        lengths=lengths,
        layers=list(spec.layers),
        projected=batch.get("teacher_projected"),
        logits=batch["teacher_logits"] if "teacher_logits" in batch else batch.get("teacher_topk_logprob"),
        index=batch.get("teacher_topk_index"),
    )
