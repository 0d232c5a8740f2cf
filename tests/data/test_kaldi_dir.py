import pytest

from espnet_distill.data.kaldi_dir import (
    DataDirError,
    c_sort_key,
    read_kaldi_map,
    read_lines,
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


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk"])
def test_a_byte_order_mark_is_an_error_naming_the_file_and_line_1(tmp_path, name):
    path = tmp_path / name
    path.write_bytes("\ufeffspkA-u1 x\nspkA-u2 y\n".encode("utf-8"))
    with pytest.raises(DataDirError, match=rf"{name}:1: starts with a UTF-8 byte-order mark; remove it$"):
        read_lines(path)
    with pytest.raises(DataDirError, match=rf"{name}:1: starts with a UTF-8 byte-order mark"):
        read_kaldi_map(path, check_sorted=True)


@pytest.mark.parametrize(
    "content, message",
    [
        # U+00A0 is one id to Kaldi (which splits at spaces and tabs) but two fields to Python
        ("spkA\u00a0u1 spkA\n", r"utt2spk:1: id 'spkA\\xa0u1' contains the whitespace character U\+00A0; ids cannot"),
        ("spkA-u1 spkA\nspkA\x01u2 spkA\n", r"utt2spk:2: id 'spkA\\x01u2' contains the control character U\+0001"),
        (
            "spkA u1 spkA\n",
            r"utt2spk:1: 'spkA': the line has 3 fields, expected '<utt> <spk>'; ids cannot contain whitespace",
        ),
    ],
)
def test_ids_with_whitespace_or_control_characters_are_errors(tmp_path, content, message):
    path = tmp_path / "utt2spk"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataDirError, match=message):
        read_kaldi_map(path, layout="<utt> <spk>")


def test_free_text_values_keep_their_spaces_but_single_values_do_not(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 HELLO  WORLD\n")
    assert read_kaldi_map(text) == {"u1": "HELLO  WORLD"}
    with pytest.raises(DataDirError, match=r"text:1: 'u1': the line has 3 fields, expected '<utt> <seconds>'"):
        read_kaldi_map(text, layout="<utt> <seconds>")


def test_read_wav_scp_refuses_a_segments_file_beside_it(tmp_path):
    from espnet_distill.data.kaldi_dir import read_wav_scp

    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("rec1 /a.wav\n")
    assert read_wav_scp(wav_scp) == {"rec1": "/a.wav"}
    (tmp_path / "segments").write_text("rec1-0001 rec1 0.00 1.50\n")
    with pytest.raises(DataDirError) as info:
        read_wav_scp(wav_scp)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}/segments: segments files are not supported")
    assert "sox in.wav out.wav trim <start> =<end>" in message and "\n" not in message
