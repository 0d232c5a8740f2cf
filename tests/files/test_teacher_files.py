"""The owners of the teacher stage's files (``teacher.yaml``) and of a teacher codebook: what they write
reads back, and what is not such a file is one error naming it."""

import numpy as np
import pytest
import torch
import yaml

from espnet_distill.files.codebook import CODEWORDS_KEY, LAYER_KEY, read_codebook, write_codebook
from espnet_distill.files.teacher_spec import TEACHER_YAML, read_spec, spec_file, write_spec
from espnet_distill.utils.config import ConfigError

CONF = {"path": "/m/hubert_base_ls960.pt", "sha256": "0" * 64, "trust_checkpoint": True}


def test_a_teacher_spec_reads_back_in_the_layout_the_teacher_stage_always_wrote(tmp_path):
    path = write_spec(tmp_path, "fairseq", CONF)
    assert path == spec_file(tmp_path) == tmp_path / TEACHER_YAML
    # the recipe redoes the later stages when its bytes change: keep yaml.safe_dump's default layout
    assert path.read_text() == yaml.safe_dump({"teacher": "fairseq", "teacher_conf": CONF})
    assert read_spec(path) == {"teacher": "fairseq", "teacher_conf": CONF}
    (tmp_path / "other.yaml").write_text("teacher: torchaudio\n")  # any name; no teacher_conf: no options
    assert read_spec(tmp_path / "other.yaml") == {"teacher": "torchaudio", "teacher_conf": {}}


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such teacher spec"),
        ("teacher: [unclosed\n", "cannot read it"),
        ("[1, 2]\n", "not a teacher spec"),
        ("teacher_conf: {}\n", "needs teacher"),
        ("teacher: 3\nteacher_conf: {}\n", "teacher must be a loader's name"),
        ("teacher: fairseq\nteacher_conf: /m/x.pt\n", "teacher_conf must be a mapping"),
        ("teacher: fairseq\nteacher_conf:\n", "teacher_conf must be a mapping"),
    ],
)
def test_what_is_not_a_teacher_spec_is_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "teacher.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_spec(path)
    assert str(path) in str(error.value)
    with pytest.raises(ConfigError, match="teacher_conf must be a mapping"):
        write_spec(tmp_path / "out", "fairseq", ["path"])
    assert not (tmp_path / "out" / TEACHER_YAML).exists()


def test_distill_train_turns_a_malformed_teacher_yaml_into_its_own_message(tmp_path):
    from espnet_distill.bin.distill_train import teacher_yaml_args

    (tmp_path / "bad.yaml").write_text("teacher: fairseq\nteacher_conf: [path]\n")
    with pytest.raises(SystemExit, match=r"--teacher_yaml .*bad.yaml: cannot read teacher and teacher_conf: .*mapping"):
        teacher_yaml_args(["--teacher_yaml", str(tmp_path / "bad.yaml")])


def test_a_codebook_reads_back_as_written_and_as_distillation_loads_it(tmp_path):
    from espnet_distill.distill.codewords import load_codebook
    from espnet_distill.make_teacher.codebook import save_codebook

    codewords = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    path = write_codebook(tmp_path / "codebook.npz", codewords, 3)
    read, layer = read_codebook(path)
    assert layer == 3 and read.dtype == np.float32 and np.array_equal(read, codewords)
    with np.load(path) as data:  # the names and types the format always had
        assert sorted(data.files) == sorted([CODEWORDS_KEY, LAYER_KEY]) and data[LAYER_KEY].dtype == np.int64
    save_codebook(tmp_path / "saved", torch.from_numpy(codewords), 2)  # the name as given: no .npz added
    tensor, layer = load_codebook(str(tmp_path / "saved"))
    assert layer == 2 and tensor.dtype == torch.float32 and torch.equal(tensor, torch.from_numpy(codewords))


def _npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "cannot read the codebook"),
        (lambda p: p.write_bytes(b""), "cannot read the codebook"),
        (lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "cannot read the codebook"),
        (lambda p: _npy(p, np.zeros((2, 2))), "not a codebook"),
        (lambda p: _npz(p, codewords=np.zeros((2, 2), np.float32)), "needs layer"),
        (lambda p: _npz(p, codewords=np.zeros(4, np.float32), layer=np.int64(1)), "codewords must be a"),
        (lambda p: _npz(p, codewords=np.zeros((0, 4), np.float32), layer=np.int64(1)), "codewords must be a"),
        (lambda p: _npz(p, codewords=np.zeros((2, 2), np.int64), layer=np.int64(1)), "finite floats"),
        (lambda p: _npz(p, codewords=np.full((2, 2), np.nan, np.float32), layer=np.int64(1)), "finite floats"),
        (lambda p: _npz(p, codewords=np.zeros((2, 2), np.float32), layer=np.float64(1.5)), "layer must be"),
        (lambda p: _npz(p, codewords=np.zeros((2, 2), np.float32), layer=np.int64(-1)), "layer must be"),
        (lambda p: _npz(p, codewords=np.array([[None]]), layer=np.int64(1)), "cannot read the codebook"),
    ],
)
def test_what_is_not_a_codebook_is_one_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "codebook.npz"
    make(path)
    with pytest.raises(ConfigError, match=message) as error:
        read_codebook(path)
    assert str(path) in str(error.value)
    with pytest.raises(ConfigError, match="codewords must be a"):
        write_codebook(tmp_path / "out.npz", np.zeros(3, np.float32), 1)
    assert not (tmp_path / "out.npz").exists()
