"""Teacher files in other formats made from the released mini teacher, for running the recipes on a user's teacher."""

from pathlib import Path

import torch

from tests.teacher.test_loaders import to_fairseq_key


def write_fairseq_teacher(released: Path, out: Path) -> Path:
    """The released torchaudio-format teacher rewritten as a fairseq HuBERT checkpoint (``cfg`` layout, float32).

    fairseq's own names, its model config (``conv_feature_layers`` as a string, ``layer_norm_first``...)
    and its codeword head (``final_proj``, ``label_embs_concat``), as ``hubert_base_ls960.pt`` holds them.
    """
    checkpoint = torch.load(released, map_location="cpu", weights_only=True)
    config, source = checkpoint["config"], checkpoint["model"]
    state = {}
    for key, value in source.items():
        value = value.float()
        if key.startswith("wav2vec2."):
            state[to_fairseq_key(key[len("wav2vec2.") :])] = value
        elif key == "mask_generator.mask_embedding":
            state["mask_emb"] = value
        elif key == "logit_generator.label_embeddings":
            state["label_embs_concat"] = value
        elif key.startswith("logit_generator.final_proj."):
            state["final_proj." + key.rsplit(".", 1)[1]] = value
        else:
            raise KeyError(key)
    layers = config["extractor_conv_layer_config"]
    model_cfg = {
        "_name": "hubert",
        "extractor_mode": "default" if config["extractor_mode"] == "group_norm" else "layer_norm",
        "conv_bias": bool(config["extractor_conv_bias"]),
        "conv_feature_layers": " + ".join(f"[({c},{k},{s})]" for c, k, s in layers),
        "encoder_embed_dim": config["encoder_embed_dim"],
        "encoder_layers": config["encoder_num_layers"],
        "encoder_attention_heads": config["encoder_num_heads"],
        "encoder_ffn_embed_dim": config["encoder_ff_interm_features"],
        "conv_pos": config["encoder_pos_conv_kernel"],
        "conv_pos_groups": config["encoder_pos_conv_groups"],
        "layer_norm_first": bool(config["encoder_layer_norm_first"]),
        "final_dim": config["final_dim"],
        "logit_temp": 0.1,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": state,
            "cfg": {"model": model_cfg, "task": {"_name": "hubert_pretraining", "labels": ["km"]}},
            "task_state": {},
            "optimizer_history": [],
        },
        out,
    )
    return out
