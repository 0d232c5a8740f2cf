"""The owners of a student's files and of a fine-tuning's student source: what they write reads back,
and what is not such a file is one error naming it."""

import json

import pytest
import yaml

from espnet_distill.files.student_dir import (
    STRUCTURE_KEYS,
    is_student_dir,
    read_description,
    structure,
    write_description,
)
from espnet_distill.files.student_source import STUDENT_SOURCE, read_student_source, write_student_source
from espnet_distill.utils.config import ConfigError

DESCRIPTION = {
    "frontend": "fbank",
    "frontend_conf": {"n_mels": 80},
    "encoder": "transformer",
    "encoder_conf": {"output_size": 64, "num_layers": 2, "ffn_dim": 128},
    "params": {"frontend": 0, "encoder": 10, "total": 10},
    "source": "valid.loss.best.pth",
}


def test_a_description_reads_back_in_its_order_and_its_structure_is_the_four_keys(tmp_path):
    path = write_description(tmp_path, DESCRIPTION)
    assert path == tmp_path / "student.yaml" and list(yaml.safe_load(path.read_text())) == list(DESCRIPTION)
    assert read_description(tmp_path) == DESCRIPTION
    assert list(structure(DESCRIPTION)) == list(STRUCTURE_KEYS) and "params" not in structure(DESCRIPTION)
    assert not is_student_dir(tmp_path)  # no student.pth yet
    (tmp_path / "student.pth").write_bytes(b"")
    assert is_student_dir(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no student.yaml"),
        ("[1, 2]", "not a student description"),
        ("frontend: fbank\n", "needs frontend_conf, encoder, encoder_conf"),
        (
            "frontend: fbank\nfrontend_conf: 3\nencoder: transformer\nencoder_conf: {}\n",
            "frontend_conf must be a mapping",
        ),
        ("frontend: [unclosed\n", "cannot read it"),
    ],
)
def test_what_is_not_a_student_description_is_one_error_naming_the_file(tmp_path, text, message):
    if text is not None:
        (tmp_path / "student.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_description(tmp_path)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(ConfigError):
        write_description(tmp_path / "other", {"frontend": "fbank"})


def test_the_student_source_says_what_a_fine_tuning_started_from(tmp_path):
    student, distilled = tmp_path / "distill_x", tmp_path / "asr_x"
    write_description(student, DESCRIPTION)
    (student / "config.yaml").write_text(
        yaml.safe_dump({"model_conf": {"discriminative_weight": 0.5}, "config": "c.yaml"})
    )
    write_student_source(distilled, student, True)
    source = read_student_source(distilled)
    assert source["kind"] == "distilled" and source["loss"] == "reg + KL" and source["frontend"] == "fbank"
    assert source["structure"] == {"num_layers": 2, "output_size": 64, "ffn_dim": 128}
    write_student_source(tmp_path / "asr_scratch", student, False)
    assert read_student_source(tmp_path / "asr_scratch")["kind"] == "scratch"
    assert read_student_source(tmp_path / "asr_without") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / STUDENT_SOURCE).write_text(json.dumps({"kind": "other"}))
    with pytest.raises(ConfigError, match="not a fine-tuning's student source"):
        read_student_source(tmp_path / "bad")
