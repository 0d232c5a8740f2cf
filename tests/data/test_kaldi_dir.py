import pytest

from espnet_distill.data.kaldi_dir import (
    DataDirError,
    c_sort_key,
    read_kaldi_map,
    read_spk2utt,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
    write_kaldi_map,
    write_spk2utt,
)


def test_c_sort_order_is_byte_order():
    keys = ["b", "B", "a-1", "a_1", "a1", "é"]
    assert sorted(keys, key=c_sort_key) == ["B", "a-1", "a1", "a_1", "b", "é"]


def test_read_kaldi_map_keeps_order_and_values(tmp_path):
    path = tmp_path / "text"
    path.write_text("u1 HELLO  WORLD\nu2 A\n")
    assert list(read_kaldi_map(path).items()) == [("u1", "HELLO  WORLD"), ("u2", "A")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"u1 a\nu1 b\n", r"text:2: duplicate id 'u1'"),
        (b"u1 a\n\nu2 b\n", r"text:2: empty line"),
        (b"u1 a\nu2\n", r"text:2: utterance/key 'u2' has an empty value"),
        (b"u1 a\nu2 caf\xe9\n", r"text:2: utterance 'u2': not valid UTF-8"),
    ],
)
def test_read_kaldi_map_rejects_bad_lines(tmp_path, content, message):
    path = tmp_path / "text"
    path.write_bytes(content)
    with pytest.raises(DataDirError, match=message):
        read_kaldi_map(path)


def test_read_kaldi_map_checks_sorting(tmp_path):
    path = tmp_path / "wav.scp"
    path.write_text("b x\na y\n")
    assert list(read_kaldi_map(path)) == ["b", "a"]
    with pytest.raises(DataDirError, match="'a' comes after 'b': not sorted"):
        read_kaldi_map(path, check_sorted=True)


def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = {"s2-2": "s2", "s1-1": "s1", "s2-1": "s2", "s1-2": "s1"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert list(spk2utt.items()) == [("s1", ["s1-1", "s1-2"]), ("s2", ["s2-1", "s2-2"])]
    write_spk2utt(tmp_path / "spk2utt", spk2utt)
    assert (tmp_path / "spk2utt").read_text() == "s1 s1-1 s1-2\ns2 s2-1 s2-2\n"
    back = spk2utt_to_utt2spk(read_spk2utt(tmp_path / "spk2utt"))
    assert dict(back) == utt2spk and list(back) == sorted(utt2spk)
    write_kaldi_map(tmp_path / "utt2spk", back)
    assert (tmp_path / "utt2spk").read_text().splitlines()[0] == "s1-1 s1"


def test_spk2utt_with_an_utterance_under_two_speakers_is_an_error():
    with pytest.raises(DataDirError, match="'u1' belongs to 'a' and 'b'"):
        spk2utt_to_utt2spk({"a": ["u1"], "b": ["u1"]})
