"""No load runs pickled code: a checkpoint that pickles a callable is planted into every path that
loads one (trainer resume, n-best averaging, --init_param in both tasks; build_model_from_file;
inference; pretraining resume; student files) and must be refused, naming the file, with nothing run.
Damaged files (missing entries, wrong shapes, truncation) are errors naming the file and the key."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from espnet_distill.distill.export import export_student, load_student
from espnet_distill.inference.decode import load_asr_model
from espnet_distill.make_teacher.pretrain import LabelledAudio, PretrainConfig, pretrain
from espnet_distill.seams import ATOMIC_SAVE_MODULES, GUARDED_MODULES
from espnet_distill.tasks.asr import ASRTask
from espnet_distill.tasks.distill import DistillTask
from espnet_distill.utils.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
    training_checkpoint_globals,
)
from tests.conftest import REPO_ROOT, Payload, python_json
from tests.make_teacher.test_pretrain import TINY as TINY_PRETRAIN
from tests.make_teacher.test_pretrain import kmeans_dir  # noqa: F401  (fixture)
from tests.tasks.test_asr_task import asr_train_args, setup  # noqa: F401  (setup: fixture)
from tests.tasks.test_distill_task import TINY_TRAINING, data_args, shapes  # noqa: F401  (shapes: fixture)
from tests.torch_loads import find_torch_loads

pytestmark = pytest.mark.slow  # the full tier: trains models or runs a recipe

DISTILL_CONFIG = REPO_ROOT / "egs/mini_synth/asr1/conf/distill/deep_thin_reg.yaml"
# Two epochs, both kept: the n-best averaging at the end loads both epoch files.
SHORT = ["--max_epoch", "2", "--num_iters_per_epoch", "2", "--keep_nbest_models", "2"]


def plant(path: Path, marker: Path, wrap=lambda payload: {"model": payload}) -> Path:
    """Write ``path`` as a checkpoint that runs ``touch_marker`` when unpickled."""
    path.unlink(missing_ok=True)  # may be a symlink (ESPnet's averaged models)
    torch.save(wrap(Payload(marker)), path)
    return path


def refused(path: Path) -> str:
    return rf"{path.name}: refused to load: .*Nothing was executed"


def distill_args(tiny_corpus, shapes, teacher, out):  # noqa: F811
    return [
        "--config",
        str(DISTILL_CONFIG),
        "--teacher",
        "torchaudio",
        "--teacher_conf",
        f"path={teacher}",
        *data_args(tiny_corpus, shapes),
        *TINY_TRAINING,
        *SHORT,
        "--output_dir",
        str(out),
    ]


@pytest.fixture(scope="module")
def finished(setup, tiny_corpus, shapes, tiny_teacher_path, tmp_path_factory):  # noqa: F811
    """A finished two-epoch run of each task: {"distill": (args, dir), "asr": (args, dir)}."""
    root = tmp_path_factory.mktemp("finished")
    runs = {
        "distill": (DistillTask, distill_args(tiny_corpus, shapes, tiny_teacher_path, root / "distill")),
        "asr": (ASRTask, asr_train_args(setup, tiny_corpus, root / "asr", *SHORT)),
    }
    for task, args in runs.values():
        task.main(cmd=args)
    export_student(root / "distill")
    assert (root / "distill" / "2epoch.pth").is_file() and (root / "asr" / "2epoch.pth").is_file()
    return {name: (task, args, root / name) for name, (task, args) in runs.items()}


def copy_run(finished, name, tmp_path):
    task, args, source = finished[name]
    target = tmp_path / name
    shutil.copytree(source, target, symlinks=True)
    return task, [*args[:-1], str(target)], target


@pytest.mark.parametrize("name", ["distill", "asr"])
def test_trainer_resume_refuses_a_pickled_callable(finished, name, tmp_path):
    task, args, exp = copy_run(finished, name, tmp_path)
    checkpoint = plant(exp / "checkpoint.pth", tmp_path / "ran")
    with pytest.raises(CheckpointError, match=refused(checkpoint)):
        task.main(cmd=[*args, "--resume", "true"])
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("name", ["distill", "asr"])
def test_nbest_averaging_of_a_finished_run_refuses_a_pickled_callable(finished, name, tmp_path):
    task, args, exp = copy_run(finished, name, tmp_path)
    epoch_file = plant(exp / "1epoch.pth", tmp_path / "ran", wrap=lambda payload: {"frontend.x": payload})
    # The rerun resumes at the end of training, then averages the two best epochs.
    with pytest.raises(CheckpointError, match=refused(epoch_file)):
        task.main(cmd=[*args, "--resume", "true"])
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("name", ["distill", "asr"])
def test_init_param_refuses_a_pickled_callable(finished, name, tmp_path):
    task, args, _ = finished[name]
    evil = plant(tmp_path / "init.pth", tmp_path / "ran")
    with pytest.raises(CheckpointError, match=refused(evil) + r".* no option to trust"):
        task.main(cmd=[*args[:-1], str(tmp_path / "new"), "--init_param", str(evil)])
    assert not (tmp_path / "ran").exists()


def test_asr_train_reports_a_refused_file_without_a_traceback(finished, tmp_path):
    _, args, _ = finished["asr"]
    evil = plant(tmp_path / "init.pth", tmp_path / "ran")
    cmd = [
        sys.executable,
        "-m",
        "espnet_distill.bin.asr_train",
        *args[:-1],
        str(tmp_path / "new"),
        "--init_param",
        str(evil),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1
    assert "init.pth: refused to load" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ran").exists()


def test_init_param_still_loads_a_plain_state_dict(finished, tmp_path):
    task, args, exp = finished["asr"]
    task.main(cmd=[*args[:-1], str(tmp_path / "new"), "--init_param", str(exp / "2epoch.pth"), "--max_epoch", "1"])
    assert (tmp_path / "new" / "1epoch.pth").is_file()


def test_build_model_from_file_and_inference_refuse_a_pickled_callable(finished, tmp_path):
    _, _, exp = finished["asr"]
    evil = plant(tmp_path / "model.pth", tmp_path / "ran", wrap=lambda payload: {"encoder.x": payload})
    with pytest.raises(CheckpointError, match=refused(evil)):
        ASRTask.build_model_from_file(exp / "config.yaml", evil)
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy, symlinks=True)
    plant(copy / "valid.cer_ctc.ave.pth", tmp_path / "ran")
    with pytest.raises(CheckpointError, match=refused(copy / "valid.cer_ctc.ave.pth")):
        load_asr_model(copy)
    assert not (tmp_path / "ran").exists()


def test_a_model_file_that_does_not_fit_names_the_file_and_the_key(finished, tmp_path):
    _, _, exp = finished["asr"]
    state = load_checkpoint(exp / "valid.cer_ctc.ave.pth")
    key = "ctc.ctc_lo.weight"
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != key}, missing)
    with pytest.raises(CheckpointError, match=rf"missing.pth: missing key '{key}'"):
        ASRTask.build_model_from_file(exp / "config.yaml", missing)
    shape = tmp_path / "shape.pth"
    torch.save({**state, key: torch.zeros(3, 3)}, shape)
    with pytest.raises(CheckpointError, match=rf"shape.pth: key '{key}' has shape \(3, 3\), expected"):
        ASRTask.build_model_from_file(exp / "config.yaml", shape)
    extra = tmp_path / "extra.pth"
    torch.save({**state, "decoder.weight": torch.zeros(1)}, extra)
    with pytest.raises(CheckpointError, match=r"extra.pth: unexpected key 'decoder.weight'"):
        ASRTask.build_model_from_file(exp / "config.yaml", extra)
    not_a_dict = tmp_path / "list.pth"
    torch.save([1, 2], not_a_dict)
    with pytest.raises(CheckpointError, match=r"list.pth: holds a list, expected a state dict"):
        ASRTask.build_model_from_file(exp / "config.yaml", not_a_dict)
    model, _ = ASRTask.build_model_from_file(exp / "config.yaml", exp / "valid.cer_ctc.ave.pth")
    torch.testing.assert_close(model.state_dict()[key], state[key])


def test_a_distillation_checkpoint_without_its_reporter_names_the_file_and_the_key(finished, tmp_path):
    task, args, exp = copy_run(finished, "distill", tmp_path)
    states = load_checkpoint(exp / "checkpoint.pth", extra_globals=training_checkpoint_globals())
    del states["reporter"]
    torch.save(states, exp / "checkpoint.pth")
    with pytest.raises(CheckpointError, match=r"checkpoint.pth: missing entry 'reporter'"):
        task.main(cmd=[*args, "--resume", "true"])


def test_student_files_refuse_a_pickled_callable(finished, tmp_path):
    _, _, exp = finished["distill"]
    student = tmp_path / "student"
    student.mkdir()
    shutil.copy(exp / "student.yaml", student / "student.yaml")
    plant(student / "student.pth", tmp_path / "ran", wrap=lambda payload: {"frontend.x": payload})
    with pytest.raises(CheckpointError, match=refused(student / "student.pth") + r".* no option to trust"):
        load_student(student)
    assert not (tmp_path / "ran").exists()


def test_pretraining_resume_refuses_pickled_truncated_and_incomplete_checkpoints(tiny_corpus, kmeans_dir, tmp_path):  # noqa: F811
    train = LabelledAudio(tiny_corpus["data"] / "train", kmeans_dir / "train" / "labels")
    config = PretrainConfig(**{**TINY_PRETRAIN, "max_steps": 2})
    checkpoint = plant(tmp_path / "checkpoint.pt", tmp_path / "ran")
    with pytest.raises(CheckpointError, match=refused(checkpoint)):
        pretrain(train, train, 8, config, tmp_path)
    assert not (tmp_path / "ran").exists()
    checkpoint.unlink()
    pretrain(train, train, 8, config, tmp_path, stop_after=1)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: cannot read checkpoint \(truncated or corrupt\?\)"):
        pretrain(train, train, 8, config, tmp_path)
    checkpoint.write_bytes(data)
    saved = torch.load(checkpoint, weights_only=True)
    del saved["optimizer"]
    torch.save(saved, checkpoint)
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: missing entry 'optimizer'"):
        pretrain(train, train, 8, config, tmp_path)


def test_every_espnet_module_that_calls_torch_load_is_guarded():
    """If an ESPnet upgrade adds a torch.load (or torch.serialization.load, or an imported load) on the
    path the project runs, this fails."""
    code = (
        "import json, sys, espnet_distill.bin.asr_train, espnet_distill.bin.distill_train, espnet_distill.bin.asr_inference\n"
        "files = {name: module.__file__ for name, module in list(sys.modules.items()) if name.startswith(('espnet.', 'espnet2.'))\n"
        "         and (getattr(module, '__file__', None) or '').endswith('.py')}\n"
        "print(json.dumps(files))"
    )
    files = python_json(code)
    found = {
        name
        for name, path in files.items()
        if find_torch_loads(Path(path).read_text(encoding="utf-8", errors="replace"))
    }
    # Imported but not called: ESPnet1's transducer loader (custom_torch_load), pulled in by the beam search.
    never_called = {"espnet.nets.pytorch_backend.transducer.utils"}
    assert set(GUARDED_MODULES) <= found
    assert found - never_called <= set(GUARDED_MODULES), found - never_called - set(GUARDED_MODULES)
    # The atomic-save patch is not vacuous: each module it patches saves with torch.save.
    for name in ATOMIC_SAVE_MODULES:
        assert "torch.save(" in Path(files[name]).read_text(encoding="utf-8"), name


def test_the_trainers_saves_are_atomic_so_a_crash_mid_write_leaves_the_previous_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    target = tmp_path / "checkpoint.pth"
    atomic_torch_save({"epoch": 1, "w": torch.ones(3)}, target)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_torch_save({"epoch": 2, "w": torch.zeros(3), "x": Unpicklable()}, target)
    assert torch.load(target, weights_only=True)["epoch"] == 1 and list(tmp_path.iterdir()) == [target]
