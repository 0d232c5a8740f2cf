"""Stored teacher targets: equal to the teacher on the fly, refused when they are of something else, resumable."""

import json
import shutil

import pytest
import torch

from espnet_distill.distill import targets
from tests.conftest import tiny_batch
from tests.distill.test_model import build


def dump(model, teacher_path, data_dir, out, dtype="float32", topk=0, **kwargs):
    spec = targets.spec_of_models([model], dtype=dtype, topk=topk)
    return targets.dump_targets(
        model, "torchaudio", {"path": str(teacher_path)}, spec, data_dir / "wav.scp", out, **kwargs
    )


def utt_ids(tiny_corpus, count, data_set="train"):
    lines = (tiny_corpus["data"] / data_set / "wav.scp").read_text().splitlines()
    return [line.split()[0] for line in lines[:count]]


@pytest.fixture(scope="module")
def kl_model(tiny_teacher_path):
    """A student whose front-end is distilled first (stage A: the projected CNN features), with the KL."""
    return build(
        tiny_teacher_path, head="layer_to_layer", init_from_teacher=(), discriminative_weight=0.5, frontend_steps=5
    ).eval()


@pytest.fixture(scope="module")
def train8(tiny_corpus, tmp_path_factory):
    """A data dir of the first 8 utterances of the tiny train set (what a dump reads: wav.scp)."""
    data = tmp_path_factory.mktemp("train8") / "train"
    data.mkdir()
    lines = (tiny_corpus["data"] / "train" / "wav.scp").read_text().splitlines()[:8]
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    return data


@pytest.fixture(scope="module")
def dumps(kl_model, tiny_teacher_path, train8, tmp_path_factory):
    """8 tiny train utterances dumped in float32 one utterance a batch, float16, and float16 with the top 4
    codewords."""
    root = tmp_path_factory.mktemp("targets")
    data = train8
    out = {
        "float32": dump(kl_model, tiny_teacher_path, data, root / "f32", batch_seconds=1e-6, shard_utts=5),
        "float16": dump(kl_model, tiny_teacher_path, data, root / "f16", dtype="float16"),
        "top4": dump(kl_model, tiny_teacher_path, data, root / "top4", dtype="float16", topk=4),
    }
    return {key: (root / name, result) for (key, result), name in zip(out.items(), ["f32", "f16", "top4"])}


def test_the_dump_stores_what_the_student_needs(dumps, kl_model):
    _, result = dumps["float32"]
    manifest = result.manifest
    assert manifest["names"] == ["teacher_hidden", "teacher_projected", "teacher_logits"]  # 20 codewords: all kept
    assert manifest["targets"]["layers"] == sorted(set(kl_model.heads.teacher_layers))
    assert manifest["geometry"]["stride"] == 320 and manifest["geometry"]["receptive_field"] == 400
    assert manifest["teacher"]["weights_sha256"] == targets.weights_sha256(kl_model.teacher)
    top4 = dumps["top4"][1].manifest
    assert top4["names"][-2:] == ["teacher_topk_logprob", "teacher_topk_index"]
    assert top4["targets"]["codewords"] == {"source": "head", "num": 20, "k": 4, "temperature": 1.0}
    residual = top4["topk_residual_mass"]["1"]
    assert 0 < residual["mean"] < residual["max"] < 1
    # float16 halves the floats; the top 4 of 20 codewords store 4 values and 4 int16 ids a frame
    f32, f16 = manifest["bytes"], dumps["float16"][1].manifest["bytes"]
    assert abs(f16["teacher_hidden"] / f32["teacher_hidden"] - 0.5) < 0.01
    top4_bytes = top4["bytes"]["teacher_topk_logprob"] + top4["bytes"]["teacher_topk_index"]
    assert abs(top4_bytes / f16["teacher_logits"] - 8 / 20) < 0.01


def test_stored_float32_losses_equal_the_teacher_on_the_fly(dumps, kl_model, tiny_corpus):
    out, _ = dumps["float32"]
    waves, lengths = tiny_batch(tiny_corpus, 4)
    utts = utt_ids(tiny_corpus, 4)
    stored = targets.collate_stored(out, utts)
    for i in range(4):  # the dump ran the teacher one utterance at a time: the same numbers exactly
        one = {
            k: v[i : i + 1, : int(stored["teacher_hidden_lengths"][i])] if v.ndim > 1 else v[i : i + 1]
            for k, v in stored.items()
        }
        speech = waves[i : i + 1, : int(lengths[i])]
        with torch.no_grad():
            kl_model.stored = None
            fly = kl_model(speech, lengths[i : i + 1])
            kl_model.use_stored_targets(
                targets.spec_of_manifest(targets.read_manifest(out)), targets.read_manifest(out)["geometry"]
            )
            from_disk = kl_model(speech, lengths[i : i + 1], **one)
            kl_model.stored = None
        assert torch.equal(fly[0], from_disk[0])
        assert fly[1].keys() == from_disk[1].keys() and all(torch.equal(fly[1][k], from_disk[1][k]) for k in fly[1])
    # a padded batch of four: the teacher's padding-exact batch against its one-by-one outputs
    manifest = targets.read_manifest(out)
    with torch.no_grad():
        fly = kl_model(waves, lengths)
        kl_model.use_stored_targets(targets.spec_of_manifest(manifest), manifest["geometry"])
        from_disk = kl_model(waves, lengths, **stored)
        kl_model.stored = None
    for key in fly[1]:
        torch.testing.assert_close(fly[1][key], from_disk[1][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["float16", "top4"])
def test_stored_float16_and_top_k_losses_are_within_tolerance(dumps, kl_model, tiny_corpus, kind):
    """float16: every loss term within 2e-3 (relative) of float32 on the fly.  The top 4 of 20 codewords: the
    regression terms alike, the KL a lower bound of the full one (the merged distributions'; test_losses)."""
    out, _ = dumps[kind]
    manifest = targets.read_manifest(out)
    waves, lengths = tiny_batch(tiny_corpus, 4)
    stored = targets.collate_stored(out, utt_ids(tiny_corpus, 4))
    with torch.no_grad():
        fly = kl_model(waves, lengths)[1]
        kl_model.use_stored_targets(targets.spec_of_manifest(manifest), manifest["geometry"])
        from_disk = kl_model(waves, lengths, **stored)[1]
        kl_model.stored = None
    for key in fly:
        if kind == "top4" and key in ("discriminative", "loss"):
            assert 0 < float(from_disk[key]) < float(fly[key]), key
        else:
            assert abs(float(from_disk[key]) - float(fly[key])) <= 2e-3 * max(1.0, abs(float(fly[key]))), key


def test_stored_crops_take_the_frames_of_the_crop(dumps, kl_model, tiny_corpus):
    out, _ = dumps["float32"]
    manifest = targets.read_manifest(out)
    stored = targets.collate_stored(out, utt_ids(tiny_corpus, 3))
    _, lengths = tiny_batch(tiny_corpus, 3)
    batch = targets.stored_batch(stored, targets.spec_of_manifest(manifest), manifest["geometry"]["conv"], lengths)
    first = torch.tensor([0, 3, 7])
    frames = targets.conv_frames(torch.full((3,), 16000), manifest["geometry"]["conv"])
    cropped = batch.crop(first, frames)
    assert cropped.lengths.tolist() == [49, 49, 49]
    for i in range(3):
        assert torch.equal(cropped.hidden[i], batch.hidden[i, first[i] : first[i] + 49])
        assert torch.equal(cropped.projected[i], batch.projected[i, first[i] : first[i] + 49])


def test_training_on_stored_targets_crops_at_the_frame_stride(dumps, kl_model, tiny_corpus):
    out, _ = dumps["float32"]
    manifest = targets.read_manifest(out)
    waves, lengths = tiny_batch(tiny_corpus, 3)
    stored = targets.collate_stored(out, utt_ids(tiny_corpus, 3))
    kl_model.use_stored_targets(targets.spec_of_manifest(manifest), manifest["geometry"])
    kl_model.train()
    try:
        kl_model.num_updates.fill_(10)  # past stage A
        loss, stats, weight = kl_model(waves, lengths, **stored)
    finally:
        kl_model.eval()
        kl_model.stored = None
    shortest = int(targets.conv_frames(lengths.min(), manifest["geometry"]["conv"]))
    assert torch.isfinite(loss) and int(weight) == 3 * min(
        shortest, int(kl_model.student_states(waves[:1], lengths[:1])[1][0])
    )


def test_targets_of_other_audio_are_refused_in_the_batch(dumps, kl_model, tiny_corpus):
    out, _ = dumps["float32"]
    manifest = targets.read_manifest(out)
    waves, lengths = tiny_batch(tiny_corpus, 2)
    stored = targets.collate_stored(out, list(reversed(utt_ids(tiny_corpus, 2))))  # another utterance's targets
    kl_model.use_stored_targets(targets.spec_of_manifest(manifest), manifest["geometry"])
    try:
        with pytest.raises(targets.TargetsError, match="stored teacher frames"):
            kl_model(waves, lengths, **stored)
    finally:
        kl_model.stored = None


def test_a_killed_dump_resumes_without_redoing_finished_shards(
    kl_model, tiny_teacher_path, train8, tmp_path, monkeypatch
):
    data = train8
    whole = dump(kl_model, tiny_teacher_path, data, tmp_path / "whole", dtype="float16", shard_utts=4, topk=3)
    real_put = targets._ShardWriter.put
    shards = []

    def dies_in_the_second_shard(writer, *args, **kwargs):
        if writer.name not in shards:
            shards.append(writer.name)
        if len(shards) == 2 and len(writer.written) == 2:  # killed mid-shard: its temporary dir stays
            raise KeyboardInterrupt
        return real_put(writer, *args, **kwargs)

    monkeypatch.setattr(targets._ShardWriter, "put", dies_in_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        dump(kl_model, tiny_teacher_path, data, tmp_path / "killed", dtype="float16", shard_utts=4, topk=3)
    assert not (tmp_path / "killed" / "manifest.json").exists()
    assert [p.name for p in (tmp_path / "killed" / "shards").iterdir() if ".tmp" not in p.name] == ["00000"]
    assert list((tmp_path / "killed" / "shards").glob("00001.tmp*"))
    with pytest.raises(targets.TargetsError, match="did not finish"):
        targets.read_manifest(tmp_path / "killed")
    monkeypatch.setattr(targets._ShardWriter, "put", real_put)
    resumed = dump(kl_model, tiny_teacher_path, data, tmp_path / "killed", dtype="float16", shard_utts=4, topk=3)
    assert resumed.shards_skipped == 1 and resumed.shards_done == whole.shards_done - 1
    assert not list((tmp_path / "killed" / "shards").glob("*.tmp*"))
    for shard in sorted((tmp_path / "whole" / "shards").iterdir()):
        for name in ("teacher_hidden.npy", "teacher_topk_logprob.npy", "teacher_topk_index.npy", "index.tsv"):
            assert (shard / name).read_bytes() == (tmp_path / "killed" / "shards" / shard.name / name).read_bytes()
    assert resumed.manifest["topk_residual_mass"] == whole.manifest["topk_residual_mass"]
    for name in resumed.manifest["names"]:
        assert (tmp_path / "killed" / f"{name}.scp").read_text() == (tmp_path / "whole" / f"{name}.scp").read_text()


def test_a_dump_dir_of_another_teacher_or_spec_is_refused(dumps, kl_model, tiny_teacher_path, train8, tmp_path):
    out, _ = dumps["float16"]
    copy = tmp_path / "f16"
    shutil.copytree(out, copy)
    with pytest.raises(targets.TargetsError, match="another teacher, layer set or audio"):
        dump(kl_model, tiny_teacher_path, train8, copy, dtype="float32")


def test_the_manifest_refuses_another_teacher_other_audio_and_missing_layers(
    dumps, kl_model, tiny_teacher_path, tiny_corpus
):
    out, _ = dumps["float16"]
    manifest = targets.read_manifest(out)
    other = build(tiny_teacher_path, head="layer_to_layer", discriminative_weight=0.5)
    with torch.no_grad():
        next(other.teacher.parameters()).add_(1e-3)
    with pytest.raises(targets.TargetsError, match="another teacher"):
        targets.check_teacher(manifest, out, other.teacher)
    with pytest.raises(targets.TargetsError, match="not of .*dev/wav.scp"):
        targets.check_audio(manifest, out, tiny_corpus["data"] / "dev" / "wav.scp")
    restricted = json.loads((out / "manifest.json").read_text())
    needed = sorted(set(kl_model.heads.teacher_layers))
    restricted["targets"]["layers"] = needed[:1]
    with pytest.raises(targets.TargetsError, match=rf"needs {needed[1:]} too".replace("[", r"\[").replace("]", r"\]")):
        targets.check_spec_covers(restricted, out, kl_model)
    restricted["targets"]["layers"] = needed
    restricted["targets"]["projected"] = False
    with pytest.raises(targets.TargetsError, match="no projected CNN features"):
        targets.check_spec_covers(restricted, out, kl_model)
    restricted["targets"]["projected"] = True
    restricted["targets"]["codewords"] = None
    with pytest.raises(targets.TargetsError, match="no codeword logits"):
        targets.check_spec_covers(restricted, out, kl_model)
    top4 = targets.read_manifest(dumps["top4"][0])
    kl_model.temperature = 2.0
    try:
        with pytest.raises(targets.TargetsError, match="at temperature 1.0; this student's KL uses 2.0"):
            targets.check_spec_covers(top4, out, kl_model)
    finally:
        kl_model.temperature = 1.0


def test_an_unfinished_or_damaged_dump_is_refused_by_name(dumps, tmp_path):
    out, _ = dumps["float16"]
    copy = tmp_path / "f16"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(targets.TargetsError, match="manifest.json: not a targets manifest"):
        targets.read_manifest(copy)
    for key, value in [("geometry", {"conv": "x", "stride": 320}), ("names", ["teacher_hidden"]), ("teacher", {})]:
        (copy / "manifest.json").write_text(json.dumps({**manifest, key: value}))
        with pytest.raises(targets.TargetsError, match="manifest.json: not a targets manifest: "):
            targets.read_manifest(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    scp = (copy / "teacher_logits.scp").read_text().splitlines()
    (copy / "teacher_logits.scp").write_text("\n".join([scp[0].replace(" 00000 ", " ../../x "), *scp[1:]]))
    with pytest.raises(targets.TargetsError, match=r"teacher_logits.scp:1: expected"):
        targets.TargetsReader(copy / "teacher_logits.scp")
    shard = next((copy / "shards").iterdir())
    (shard / "teacher_hidden.npy").write_bytes(
        b"\x93NUMPY"
        + b"\x01\x00"
        + b"v\x00{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"
        + b" " * 60
        + b"\n"
    )
    reader = targets.TargetsReader(copy / "teacher_hidden.scp")
    utt = next(
        line.split()[0]
        for line in (copy / "teacher_hidden.scp").read_text().splitlines()
        if line.split()[1] == shard.name
    )
    with pytest.raises(targets.TargetsError, match="teacher_hidden.npy: cannot read stored targets"):
        reader[utt]
    with pytest.raises(targets.TargetsError, match="no stored targets"):
        reader["no_such_utterance"]
