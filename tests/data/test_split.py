import pytest

from espnet_distill.data.kaldi_dir import DataDirError
from espnet_distill.data.split import split_by_speaker, split_evenly, split_scp


def test_split_evenly_sizes_differ_by_at_most_one():
    parts = split_evenly(list(range(10)), 4)
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert sum(parts, []) == list(range(10))


def test_split_by_speaker_keeps_speakers_whole():
    utt2spk = {f"s{s}-{u}": f"s{s}" for s, n in [(1, 5), (2, 1), (3, 3), (4, 3)] for u in range(n)}
    keys = sorted(utt2spk)
    parts = split_by_speaker(keys, utt2spk, 3)
    assert sum(parts, []) == keys
    assert all(parts)
    speaker_sets = [{utt2spk[k] for k in p} for p in parts]
    for i, a in enumerate(speaker_sets):
        for b in speaker_sets[i + 1 :]:
            assert not a & b


def test_split_by_speaker_needs_enough_speakers():
    with pytest.raises(DataDirError, match="cannot split 1 speakers into 2 parts"):
        split_by_speaker(["a-1", "a-2"], {"a-1": "a", "a-2": "a"}, 2)


def test_split_scp_writes_contiguous_parts(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} /x/u{i}.wav\n" for i in range(7)))
    outs = [tmp_path / "split" / f"wav.{n}.scp" for n in (1, 2, 3)]
    split_scp(scp, outs)
    texts = [o.read_text() for o in outs]
    assert "".join(texts) == scp.read_text()
    assert [t.count("\n") for t in texts] == [3, 2, 2]
    with pytest.raises(DataDirError, match="cannot split 7 lines into 8 parts"):
        split_scp(scp, [tmp_path / f"o{n}" for n in range(8)])


def test_the_cli_splits_into_a_job_pattern(tmp_path):
    from espnet_distill.recipe.split_scp import main

    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} /x/u{i}.wav\n" for i in range(7)))
    main(["--nj", "3", str(scp), str(tmp_path / "split3" / "wav.JOB.scp")])
    parts = [(tmp_path / "split3" / f"wav.{n}.scp").read_text() for n in (1, 2, 3)]
    assert "".join(parts) == scp.read_text() and [p.count("\n") for p in parts] == [3, 2, 2]
    with pytest.raises(SystemExit) as e:
        main(["--nj", "3", str(scp), str(tmp_path / "wav.scp.out")])  # no JOB in the pattern
    assert e.value.code == 2
