"""The LM task: ESPnet's LM training on this project's tokens, its perplexity, ESPnet's own loader."""

import json
import math
import re

import pytest
import yaml

pytestmark = pytest.mark.slow  # the full tier: trains an LM


def test_the_lm_learns_and_its_perplexity_is_espnets_validation_loss(tiny_lm):
    lm_dir, log = tiny_lm
    valid = [float(v) for v in re.findall(r"epoch results: .*\[valid\] loss=([0-9.]+)", log)]
    train = [float(v) for v in re.findall(r"epoch results: \[train\] .*?loss=([0-9.]+)", log)]
    assert len(valid) == len(train) == 3 and train[-1] < train[0]
    record = json.loads((lm_dir / "perplexity.json").read_text())
    assert record["model_file"] == "valid.loss.ave.pth" and record["sentences"] > 0
    # the 1-best average is the epoch of lowest validation loss; ESPnet weights that loss by tokens
    assert record["perplexity"] == pytest.approx(math.exp(min(valid)), rel=2e-3)
    assert "perplexity of" in log


def test_espnets_own_lm_task_loads_what_lm_train_writes(tiny_lm):
    from espnet2.tasks.lm import LMTask as ESPnetLMTask

    from espnet_distill.inference.lm import load_lm

    lm_dir, _ = tiny_lm
    config = yaml.safe_load((lm_dir / "config.yaml").read_text())
    assert config["lm"] == "seq_rnn" and config["token_list"][0] == "<blank>" and config["token_type"] == "char"
    theirs, _ = ESPnetLMTask.build_model_from_file(lm_dir / "config.yaml", lm_dir / "valid.loss.ave.pth")
    ours = load_lm(lm_dir, config["token_list"], "tokens.txt")
    for key, value in ours.state_dict().items():
        assert theirs.lm.state_dict()[key].equal(value), key
