"""scratch_models: one from-scratch reference per student structure."""

import yaml

from espnet_distill.recipe.scratch_models import main, unique_structures


def _student(root, name, frontend="wav_cnn", layers=4, head="reg"):
    path = root / f"distill_{name}"
    path.mkdir()
    spec = {
        "frontend": frontend,
        "frontend_conf": {"output_dim": 160},
        "encoder": "transformer",
        "encoder_conf": {"output_size": 160, "num_layers": layers},
        "params": {"total": 1000 if head == "reg" else 1200},  # the heads differ, the structure does not
        "source": f"{head}.pth",
    }
    (path / "student.yaml").write_text(yaml.safe_dump(spec))
    return path


def test_students_that_differ_only_in_loss_share_one_scratch_model(tmp_path, capsys):
    kl = _student(tmp_path, "deep_thin_reg_kl", head="reg_kl")
    reg = _student(tmp_path, "deep_thin_reg")
    fbank = _student(tmp_path, "deep_thin_reg_kl_fbank", frontend="fbank")
    shallow = _student(tmp_path, "shallow_wide_reg", layers=2)
    pending = tmp_path / "distill_not_yet"  # no student.yaml: kept, stage 7 reports it
    assert unique_structures([kl, reg, fbank, shallow, pending]) == [kl, fbank, shallow, pending]
    assert unique_structures([reg, kl]) == [reg]
    main([str(kl), str(reg), str(fbank)])
    assert capsys.readouterr().out.split() == [str(kl), str(fbank)]
