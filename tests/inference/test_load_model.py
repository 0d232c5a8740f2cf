"""load_asr_model (ASRTask.build_model_from_file): what every command that loads a fine-tuning exp dir goes
through checks config.yaml (token list, component options) and the model file's CTC size, naming the file.

Fast: a tiny wav_cnn model with random weights stands in for a trained one (:func:`tiny_asr_exp`).
"""

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from espnet_distill.asr.build import write_random_ctc_exp
from espnet_distill.inference.decode import load_asr_model
from espnet_distill.tasks.asr import ASRTask
from espnet_distill.utils.checkpoint import CheckpointError
from espnet_distill.utils.config import ConfigError

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
MODEL_FILE = "valid.loss.best.pth"
TINY = dict(
    frontend="wav_cnn",
    frontend_conf={"conv_layers": [[16, 10, 5], [16, 3, 2], [16, 2, 2]], "output_dim": 32, "dropout": 0.0},
    encoder="transformer",
    encoder_conf=dict(
        output_size=32, num_layers=1, attention_heads=4, ffn_dim=64, pos_conv_kernel=8, pos_conv_groups=4, dropout=0.0
    ),
)


def tiny_asr_exp(out: Path, tokens=TOKENS) -> Path:
    """A fine-tuning exp dir (config.yaml in ESPnet's form, ``valid.loss.best.pth``) with random weights."""
    return write_random_ctc_exp(TINY, tokens, out, model_file=MODEL_FILE)


@pytest.fixture(scope="module")
def asr_exp(tmp_path_factory) -> Path:
    return tiny_asr_exp(tmp_path_factory.mktemp("load_model") / "asr_tiny")


def edited_copy(exp: Path, target: Path, edit) -> Path:
    """A copy of ``exp`` whose config.yaml is ``edit(config)``."""
    shutil.copytree(exp, target)
    config = yaml.safe_load((target / "config.yaml").read_text())
    edit(config)
    (target / "config.yaml").write_text(yaml.safe_dump(config))
    return target


def with_unknown_encoder_key(config):
    config["encoder_conf"]["num_layerz"] = 2


def without_token_list(config):
    del config["token_list"]


def test_the_tiny_exp_loads_with_its_weights(asr_exp):
    model, args = load_asr_model(asr_exp)
    assert args.token_list == TOKENS and model.ctc.ctc_lo.weight.shape == (len(TOKENS), 32)
    saved = torch.load(asr_exp / MODEL_FILE, weights_only=True)
    torch.testing.assert_close(model.state_dict()["ctc.ctc_lo.weight"], saved["ctc.ctc_lo.weight"])


def test_an_unknown_encoder_conf_key_names_config_yaml_and_the_key(asr_exp, tmp_path):
    exp = edited_copy(asr_exp, tmp_path / "exp", with_unknown_encoder_key)
    with pytest.raises(ConfigError, match=r"exp/config.yaml: encoder_conf: unknown key 'num_layerz' \(") as e:
        load_asr_model(exp)
    assert "num_layers" in str(e.value)  # what it does take
    with pytest.raises(ConfigError, match=r"config.yaml: encoder_conf: unknown key 'num_layerz'"):
        ASRTask.build_model_from_file(None, exp / MODEL_FILE)  # config.yaml beside the model file


def test_a_config_without_token_list_names_config_yaml_and_the_key(asr_exp, tmp_path):
    exp = edited_copy(asr_exp, tmp_path / "exp", without_token_list)
    with pytest.raises(ConfigError, match=r"exp/config.yaml: no token_list in it"):
        load_asr_model(exp)


def test_a_token_list_file_that_is_not_there_is_named(asr_exp, tmp_path):
    exp = edited_copy(asr_exp, tmp_path / "exp", lambda c: c.update(token_list=str(tmp_path / "gone" / "tokens.txt")))
    with pytest.raises(ConfigError, match=rf"config.yaml: token_list: no such file {tmp_path}/gone/tokens.txt"):
        load_asr_model(exp)


@pytest.mark.parametrize("tokens", [TOKENS + ["d"], TOKENS[:-1]], ids=["one_more", "one_less"])
def test_a_token_list_of_another_size_than_the_ctc_layer_names_the_file_and_both_numbers(asr_exp, tmp_path, tokens):
    exp = edited_copy(asr_exp, tmp_path / "exp", lambda c: c.update(token_list=tokens))
    with pytest.raises(CheckpointError) as e:
        load_asr_model(exp)
    message = str(e.value)
    assert message.startswith(f"{exp / MODEL_FILE}: its CTC layer has {len(TOKENS)} outputs but ")
    assert f"the token_list of {exp / 'config.yaml'} has {len(tokens)} tokens" in message


def test_a_model_that_cannot_be_built_from_the_config_names_config_yaml(asr_exp, tmp_path):
    exp = edited_copy(asr_exp, tmp_path / "exp", lambda c: c["encoder_conf"].update(attention_heads=5))
    with pytest.raises(ConfigError, match=r"exp/config.yaml: cannot build the model it describes: .*attention_heads"):
        load_asr_model(exp)
