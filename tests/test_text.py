import pytest

from livespeech.text import BLANK, Vocabulary, normalize


@pytest.mark.parametrize("raw, clean", [
    ("Hello,  World!", "hello world"),
    ("It\u2019s 7 o'clock", "it's seven o'clock"),
    ("Caf\u00e9 na\u00efve", "cafe naive"),
    ("  \t\n", ""),
])
def test_normalize(raw, clean):
    assert normalize(raw) == clean


def test_vocabulary_round_trip():
    v = Vocabulary()
    assert len(v) == 29 and v.tokens[BLANK] == "<blank>"
    assert v.decode(v.encode("don't stop")) == "don't stop"


def test_vocabulary_rejects_duplicates():
    with pytest.raises(ValueError):
        Vocabulary(["<blank>", "a", "a"])
