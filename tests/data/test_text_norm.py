import pytest

from espnet_distill.data.text_norm import fortune_records, normalize_sentence, split_sentences


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("Don't look back, something might be gaining on you.", "DON'T LOOK BACK SOMETHING MIGHT BE GAINING ON YOU"),
        ('He said: "well-known facts -- are boring!"', "HE SAID WELL KNOWN FACTS ARE BORING"),
        ("The 'quoted' words stay words.", "THE QUOTED WORDS STAY WORDS"),
        ("I paid 20 dollars for it.", None),  # digits: dropped
        ("The NASA people said so.", None),  # acronym: read letter by letter
        ("Mr. Smith went to town today.", None),  # abbreviation
        ("Send it to me@example.com now please.", None),  # symbols
        ("Too short.", None),
    ],
)
def test_normalize_sentence(sentence, expected):
    assert normalize_sentence(sentence) == expected


def test_split_sentences():
    assert split_sentences('One two. "Three four!" Five? Six') == ["One two.", '"Three four!"', "Five?", "Six"]


def test_fortune_records_drop_attributions(tmp_path):
    path = tmp_path / "f"
    path.write_text("A dream will always triumph\nover reality.\n\t\t-- Stanislaw Lem\n%\nSecond one.\n%\n")
    assert list(fortune_records(path)) == ["A dream will always triumph over reality.", "Second one."]
