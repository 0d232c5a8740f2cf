"""Export a distilled student for fine-tuning, and summarize its distillation run.

``student.pth`` holds the ``frontend.*`` and ``encoder.*`` weights (keys as in
an ESPnet ASR model) of the averaged n-best checkpoint ESPnet writes at the
end of training (or the best or latest one); ``student.yaml`` their resolved
``frontend``/``encoder`` configuration.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
import yaml

from espnet_distill.components import build_student
from espnet_distill.files.student_dir import read_description, weights_file, write_description
from espnet_distill.files.teacher_spec import read_spec
from espnet_distill.frontend.conv import teacher_frontend_defaults
from espnet_distill.prune.gates import UNITS, EncoderGates, FrontendGates
from espnet_distill.prune.physical import prune_encoder, prune_frontend
from espnet_distill.student.presets import TeacherShape
from espnet_distill.teacher import load_teacher
from espnet_distill.utils.checkpoint import load_checkpoint, preferred_model_file, training_checkpoint_globals
from espnet_distill.utils.fileio import atomic_write

logger = logging.getLogger(__name__)

STUDENT_PREFIXES = ("frontend.", "encoder.")
# Buffers of data statistics, not learned weights: not counted as parameters, and
# kept when a structure is trained from scratch (see ``load_student_statistics``).
STATISTICS = ("running_mean", "running_var", "cmvn_mean", "cmvn_istd")


def _final_stats(exp_dir: Path) -> Dict[str, Any]:
    """The last epoch's train and valid statistics, from ESPnet's checkpoint."""
    states = load_checkpoint(exp_dir / "checkpoint.pth", extra_globals=training_checkpoint_globals())
    reporter = states["reporter"]
    epoch = reporter["epoch"]
    stats = reporter["stats"][epoch]
    return {
        "epoch": epoch,
        **{
            phase: {k: float(v) for k, v in stats[phase].items() if isinstance(v, (int, float))}
            for phase in ("train", "valid")
            if phase in stats
        },
    }


def _throughput(exp_dir: Path) -> Dict[str, float]:
    path = exp_dir / "throughput.jsonl"
    records: List[Dict[str, Any]] = []
    if path.exists():
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    audio = sum(r["audio_seconds"] * r.get("world_size", 1) for r in records)
    seconds = sum(r["seconds"] for r in records)
    return {
        "train_steps": sum(r["steps"] for r in records),
        "train_audio_hours": audio / 3600,
        "train_seconds": seconds,
        "audio_seconds_per_second": audio / seconds if seconds else 0.0,
    }


def export_student(exp_dir: Path) -> Path:
    """Write ``student.pth``, ``student.yaml`` and ``distill_summary.json`` into ``exp_dir``."""
    config = yaml.safe_load((exp_dir / "config.yaml").read_text(encoding="utf-8"))
    prune_conf = (config.get("model_conf") or {}).get("prune_conf")
    # A pruning run's student is its last one: the earlier, larger ones have lower losses.
    source = (
        exp_dir / "latest.pth" if prune_conf and (exp_dir / "latest.pth").is_file() else preferred_model_file(exp_dir)
    )
    state = load_checkpoint(source)
    student = {k: v for k, v in state.items() if k.startswith(STUDENT_PREFIXES)}
    frontend_conf = {k: v for k, v in config["frontend_conf"].items() if k != "stats_file"}
    encoder_conf = config["encoder_conf"]
    if prune_conf:
        frontend_conf, encoder_conf, student = pruned_student(config, frontend_conf, state, student)
    with atomic_write(weights_file(exp_dir), mode="wb") as f:
        torch.save(student, f)
    params = {
        part: sum(v.numel() for k, v in student.items() if k.startswith(part + ".") and not k.endswith(STATISTICS))
        for part in ("frontend", "encoder")
    }
    description = {
        "frontend": config["frontend"],
        # Statistics files (an fbank front-end's CMVN) are not needed: the weights carry them.
        "frontend_conf": frontend_conf,
        "encoder": config["encoder"],
        "encoder_conf": encoder_conf,
        "params": {**params, "total": params["frontend"] + params["encoder"]},
        "source": str(source.resolve().name),
        "teacher": config["teacher"],
        "teacher_conf": config["teacher_conf"],
    }
    write_description(exp_dir, description)
    summary = {"params": description["params"], **_throughput(exp_dir), "final": _final_stats(exp_dir)}
    with atomic_write(exp_dir / "distill_summary.json") as f:
        json.dump(summary, f, indent=2)
    logger.info(
        "exported the student (%d parameters) from %s to %s",
        params["frontend"] + params["encoder"],
        source,
        weights_file(exp_dir),
    )
    return weights_file(exp_dir)


def pruned_student(
    config: Dict[str, Any],
    frontend_conf: Dict[str, Any],
    state: Dict[str, torch.Tensor],
    student: Dict[str, torch.Tensor],
) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(frontend_conf, encoder_conf, student weights)`` of a pruning run: its encoder (and, with ``conv``
    gates, its CNN) cut to what its gates keep."""
    units = config["model_conf"]["prune_conf"].get("units", UNITS)
    frontend, encoder = build_student({**config, "frontend_conf": frontend_conf})
    frontend.load_state_dict({k[len("frontend.") :]: v for k, v in student.items() if k.startswith("frontend.")})
    encoder.load_state_dict({k[len("encoder.") :]: v for k, v in student.items() if k.startswith("encoder.")})
    gates = EncoderGates(encoder, units)
    prefix = "pruning.gates."
    gates.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    pruned, encoder_conf = prune_encoder(encoder.eval(), config["encoder_conf"], frontend.output_size(), gates.eval())
    gates.remove()
    logger.info(
        "pruned the encoder to heads %s and feed-forward units %s",
        encoder_conf["layer_heads"],
        encoder_conf["layer_ffn_dims"],
    )
    if "conv" in units:
        frontend_gates = FrontendGates(frontend)
        prefix = "pruning.frontend_gates."
        frontend_gates.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        frontend, frontend_conf = prune_frontend(frontend.eval(), frontend_conf, frontend_gates.eval())
        frontend_gates.remove()
        logger.info("pruned the CNN to channels %s", [layer[0] for layer in frontend_conf["conv_layers"]])
    weights = {f"frontend.{k}": v for k, v in frontend.state_dict().items()}
    weights.update({f"encoder.{k}": v for k, v in pruned.state_dict().items()})
    return frontend_conf, encoder_conf, weights


def load_student_weights(exp_dir: Path, frontend: torch.nn.Module, encoder: torch.nn.Module) -> None:
    """Load ``exp_dir/student.pth`` into a front-end and encoder, strictly and without unpickling code."""
    state = load_checkpoint(weights_file(exp_dir))
    for prefix, module in (("frontend.", frontend), ("encoder.", encoder)):
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(part)
        except RuntimeError as e:
            raise ValueError(f"{weights_file(exp_dir)} does not match the {prefix[:-1]} built: {e}") from e


def load_student_statistics(exp_dir: Path, frontend: torch.nn.Module) -> int:
    """Copy the front-end's data statistics (e.g. CMVN) from ``exp_dir/student.pth``; returns how many tensors.

    A structure trained from scratch keeps these: they describe the data, not what was learned.
    """
    state = load_checkpoint(weights_file(exp_dir))
    own = dict(frontend.named_buffers())
    copied = 0
    for key, value in state.items():
        name = key[len("frontend.") :]
        if key.startswith("frontend.") and name.endswith(STATISTICS) and name in own:
            own[name].copy_(value)
            copied += 1
    return copied


def load_student(exp_dir: Path) -> Tuple[torch.nn.Module, torch.nn.Module, Dict[str, Any]]:
    """``(frontend, encoder, description)`` of an exported student, weights loaded strictly."""
    description = read_description(exp_dir)
    frontend, encoder = build_student(description)
    load_student_weights(exp_dir, frontend, encoder)
    return frontend.eval(), encoder.eval(), description


def export_teacher_as_student(teacher_yaml: Path, out_dir: Path) -> Path:
    """Write the teacher's CNN and Transformer as a student (``student.yaml``/``student.pth``).

    Fine-tuning then treats the teacher like any distilled student: the
    reference row of every comparison.
    """

    spec = read_spec(teacher_yaml)
    teacher = load_teacher(spec["teacher"], **spec["teacher_conf"])
    shape = TeacherShape.of(teacher.model)
    description: Dict[str, Any] = {
        "frontend": "wav_cnn",
        "frontend_conf": {**teacher_frontend_defaults(teacher), "output_dim": shape.width},
        "encoder": "transformer",
        "encoder_conf": {
            "output_size": shape.width,
            "num_layers": shape.num_layers,
            "attention_heads": shape.attention_heads,
            "ffn_dim": shape.ffn_dim,
            "pos_conv_kernel": shape.pos_conv_kernel,
            "pos_conv_groups": shape.pos_conv_groups,
            "layer_norm_first": shape.layer_norm_first,
        },
    }
    frontend, encoder = build_student(description)
    frontend.init_from_teacher(teacher.model)
    encoder.init_from_teacher(teacher.model)
    state = {
        **{f"frontend.{k}": v for k, v in frontend.state_dict().items()},
        **{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
    }
    with atomic_write(weights_file(out_dir), mode="wb") as f:
        torch.save(state, f)
    params = {
        "frontend": sum(p.numel() for p in frontend.parameters()),
        "encoder": sum(p.numel() for p in encoder.parameters()),
    }
    description.update(
        params={**params, "total": params["frontend"] + params["encoder"]},
        source="teacher",
        teacher=spec["teacher"],
        teacher_conf=spec["teacher_conf"],
    )
    write_description(out_dir, description)
    logger.info(
        "exported the teacher (%d parameters without its codeword head) to %s", description["params"]["total"], out_dir
    )
    return weights_file(out_dir)
