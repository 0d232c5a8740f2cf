"""The owner of an ONNX export directory: its ``model.json`` reads back as written, and a ``model.json``
that is missing, not JSON or lacks a usable key is one error naming it."""

import json
import re

import pytest

from espnet_distill.files.onnx_dir import (
    META_NAME,
    ModelDirError,
    is_onnx_dir,
    model_file,
    read_meta,
    tokens_file,
    write_meta,
)
from espnet_distill.inference.onnx_runtime import ModelDirError as RuntimeModelDirError

META = {
    "source": "exp/asr_student",
    "checkpoint": None,
    "sample_rate": 16000,
    "token_type": "bpe",
    "bpemodel": "bpe.model",
    "min_samples": 400,
    "frame_shift": 320,
    "files": ["model.onnx", "model.int8.onnx", "tokens.txt", "bpe.model"],
    "int8": None,
    "parity": {"utterances": 2, "max_abs_diff": 1e-5, "cer": {"pytorch": 10.0}},
}


def test_model_json_reads_back_in_its_order_and_makes_the_dir_an_export_dir(tmp_path):
    assert not is_onnx_dir(tmp_path)
    path = write_meta(tmp_path, META)
    assert path == tmp_path / "model.json" and list(json.loads(path.read_text())) == list(META)
    assert path.read_text().endswith("}\n") and '\n  "source"' in path.read_text()  # indented, one trailing newline
    assert read_meta(tmp_path) == META
    assert is_onnx_dir(tmp_path)
    assert model_file(tmp_path) == tmp_path / "model.onnx" and model_file(tmp_path, int8=True).name == "model.int8.onnx"
    assert tokens_file(tmp_path) == tmp_path / "tokens.txt"
    assert ModelDirError is RuntimeModelDirError and issubclass(ModelDirError, ValueError)


def _without(key):
    return {k: v for k, v in META.items() if k != key}


@pytest.mark.parametrize(
    "meta, message",
    [
        (_without("frame_shift"), "model.json: no 'frame_shift' key"),
        (_without("token_type"), "model.json: no 'token_type' key"),
        ({**META, "frame_shift": 0}, "model.json: 'frame_shift' must be a positive integer, got 0"),
        ({**META, "frame_shift": "320"}, "model.json: 'frame_shift' must be a positive integer, got '320'"),
        ({**META, "frame_shift": True}, "model.json: 'frame_shift' must be a positive integer, got True"),
        ({**META, "min_samples": -1}, "model.json: 'min_samples' must be a positive integer, got -1"),
        ({**META, "bpemodel": 3}, "model.json: 'bpemodel' must be a file name or null, got 3"),
        ([1, 2], "model.json: not a JSON object"),
    ],
)
def test_a_model_json_without_a_usable_key_is_one_error_naming_it(tmp_path, meta, message):
    (tmp_path / META_NAME).write_text(json.dumps(meta))
    with pytest.raises(ModelDirError, match=re.escape(f"{tmp_path / META_NAME}: {message.split(': ', 1)[1]}")):
        read_meta(tmp_path)
    with pytest.raises(ModelDirError, match=re.escape(message)):  # nor is it written
        write_meta(tmp_path / "out", meta)
    assert not (tmp_path / "out" / META_NAME).exists()


def test_a_missing_or_broken_model_json_is_an_error_naming_it(tmp_path):
    with pytest.raises(ModelDirError, match=re.escape(f"{tmp_path}: no model.json; is it an export_onnx directory?")):
        read_meta(tmp_path)
    (tmp_path / META_NAME).write_text('{"token_type": "char",\n')
    with pytest.raises(ModelDirError, match=re.escape(f"{tmp_path / META_NAME}: not valid JSON")):
        read_meta(tmp_path)
