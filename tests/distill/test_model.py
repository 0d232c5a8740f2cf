"""The distillation model: losses over padding, losses going down, the teacher kept out of checkpoints."""

import numpy as np
import pytest
import torch

from espnet_distill.tasks.distill import DistillTask
from tests.conftest import tiny_batch


def build(tiny_teacher_path, head="multitask", init_from_teacher=("frontend",), **model_conf):
    parser = DistillTask.get_parser()
    args = parser.parse_args(
        [
            "--teacher",
            "torchaudio",
            "--teacher_conf",
            f"path={tiny_teacher_path}",
            "--encoder_conf",
            "preset=shallow_wide",
            "--encoder_conf",
            "dropout=0.0",
            "--encoder_conf",
            "attention_dropout=0.0",
            "--frontend_conf",
            "dropout=0.0",
            "--head",
            head,
            *(["--init_from_teacher", *init_from_teacher] if init_from_teacher else []),
            "--output_dir",
            "unused",
        ]
    )
    args.model_conf.update(model_conf)
    torch.manual_seed(0)
    return DistillTask.build_model(args)


@pytest.mark.parametrize("head", ["multitask", "layer_to_layer"])
def test_padded_batch_loss_equals_utterances_one_by_one(tiny_teacher_path, tiny_corpus, head):
    model = build(tiny_teacher_path, head=head, discriminative_weight=0.5).eval()
    waves, lengths = tiny_batch(tiny_corpus, 3)
    with torch.no_grad():
        loss, stats, weight = model(waves, lengths)
        singles = [model(waves[i : i + 1, : int(n)], lengths[i : i + 1]) for i, n in enumerate(lengths)]
    frames = torch.stack([w for _, _, w in singles]).double()
    assert int(weight) == int(frames.sum())
    for key in stats:
        expected = sum(float(s[key]) * float(f) for (_, s, _), f in zip(singles, frames)) / float(frames.sum())
        assert abs(float(stats[key]) - expected) < 1e-4 * max(1.0, abs(expected)), key
    assert "discriminative" in stats and any(k.startswith("cos_layer") for k in stats)


def test_every_loss_term_goes_down(tiny_teacher_path, tiny_corpus):
    model = build(tiny_teacher_path, discriminative_weight=0.5)
    model.train()
    waves, lengths = tiny_batch(tiny_corpus, 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def evaluate():
        model.eval()
        with torch.no_grad():
            _, stats, _ = model(waves, lengths)
        model.train()
        return {k: float(v) for k, v in stats.items()}

    before = evaluate()
    for _ in range(15):
        loss, _, _ = model(waves, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate()
    terms = [k for k in before if k.startswith(("l1_", "cos_")) or k in ("regression", "discriminative", "loss")]
    assert len(terms) == 2 * 3 + 3
    for key in terms:
        assert after[key] < before[key], (key, before[key], after[key])


def test_teacher_is_frozen_outside_checkpoints_and_moves_with_the_model(tiny_teacher_path):
    model = build(tiny_teacher_path)
    assert not any(k.startswith("teacher.") for k in model.state_dict())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    ours = {id(p) for p in model.parameters()}
    assert not ours & {id(p) for p in model.teacher.parameters()}
    model.to(torch.float64)
    assert next(model.teacher.parameters()).dtype == torch.float64
    model.train()
    assert not model.teacher.training


def test_training_crops_are_the_same_for_teacher_and_student(tiny_teacher_path, tiny_corpus):
    from espnet_distill.distill.model import crop_batch

    waves, lengths = tiny_batch(tiny_corpus, 3)
    cropped, new_lengths, starts = crop_batch(
        waves, lengths, max_samples=20000, to_shortest=True, generator=torch.Generator().manual_seed(0)
    )
    assert new_lengths.tolist() == [20000] * 3 and cropped.shape == (3, 20000)
    for i in range(3):
        torch.testing.assert_close(cropped[i], waves[i, int(starts[i]) : int(starts[i]) + 20000])
    for i in range(3):  # each crop is a contiguous piece of its utterance
        wave = waves[i, : int(lengths[i])].numpy()
        start = int(
            np.argmin(
                [np.abs(wave[s : s + 50] - cropped[i, :50].numpy()).sum() for s in range(int(lengths[i]) - 20000 + 1)]
            )
        )
        torch.testing.assert_close(cropped[i], waves[i, start : start + 20000])


def test_teacher_without_codewords_needs_a_codebook(tiny_teacher_path, tiny_corpus, tmp_path):
    from espnet_distill.make_teacher.codebook import fit_codebook, save_codebook

    model = build(tiny_teacher_path)
    teacher = model.teacher
    teacher.final_proj, teacher.label_embeddings = None, None  # as a Hugging Face teacher
    with pytest.raises(ValueError, match="no codeword head"):
        type(model)(model.frontend, model.encoder, model.heads, teacher, discriminative_weight=0.5)
    codewords = fit_codebook(
        teacher, tiny_corpus["data"] / "train" / "wav.scp", layer=2, num_codewords=8, max_utterances=6
    )
    assert codewords.shape == (8, 64)
    save_codebook(tmp_path / "codebook.npz", codewords, layer=2)
    with_codebook = type(model)(
        model.frontend,
        model.encoder,
        model.heads,
        teacher,
        discriminative_weight=0.5,
        codebook=str(tmp_path / "codebook.npz"),
    ).eval()
    waves, lengths = tiny_batch(tiny_corpus, 2)
    with torch.no_grad():
        _, stats, _ = with_codebook(waves, lengths)
    assert float(stats["discriminative"]) > 0
