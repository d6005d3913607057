import torch

from livespeech.decoding import GreedyCTCDecoder, greedy_ids, greedy_text
from livespeech.text import Vocabulary

V = Vocabulary()


def one_hot(tokens: str) -> torch.Tensor:
    """Log-probs whose best path spells ``tokens``: '_' blank, other chars themselves."""
    ids = [0 if c == "_" else V.tokens.index(c) for c in tokens]
    lp = torch.full((len(ids), len(V)), -10.0)
    lp[torch.arange(len(ids)), ids] = 0.0
    return lp


def test_greedy_collapses_repeats_and_blanks():
    assert greedy_text(one_hot("hh_ee_ll_ll_oo").unsqueeze(0), torch.tensor([14]), V) == ["hello"]


def test_streaming_decoder_does_not_double_a_token_across_chunks():
    lp = one_hot("__ccc_aa_tt__")
    for cut in range(1, lp.shape[0]):
        d = GreedyCTCDecoder(V, 0.03)
        d.update(lp[:cut])
        d.update(lp[cut:])
        assert d.text == "cat", cut


def test_streaming_equals_offline_any_split():
    lp = one_hot("_hh_i_ _tt_hh_ee_rr_ee__")
    offline = [t for t, _ in greedy_ids(lp)]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        d = GreedyCTCDecoder(V, 0.03)
        i = 0
        while i < lp.shape[0]:
            n = int(torch.randint(0, 5, (1,), generator=g))
            d.update(lp[i : i + n])
            i += n
        assert [e.token for e in d.emissions] == offline


def test_word_timestamps_from_emission_steps():
    d = GreedyCTCDecoder(V, 0.03)
    d.update(one_hot("_hi___ __yo_"))
    words = d.words()
    assert [w.word for w in words] == ["hi", "yo"]
    assert abs(words[0].start_s - 0.03) < 1e-9 and abs(words[0].end_s - 0.09) < 1e-9
    assert abs(words[1].start_s - 0.27) < 1e-9 and abs(words[1].end_s - 0.33) < 1e-9


def test_reset_with_offset_keeps_absolute_times():
    d = GreedyCTCDecoder(V, 0.03)
    d.reset(step_offset=100)
    d.update(one_hot("a"))
    assert abs(d.words()[0].start_s - 3.0) < 1e-9


def test_blank_penalty_lets_a_narrowly_beaten_character_through():
    lp = one_hot("_c_a_t_")
    lp[3] = torch.full((len(V),), -10.0)
    lp[3, 0], lp[3, V.tokens.index("a")] = -0.4, -1.1  # blank wins by 0.7: "a" is deleted
    assert V.decode(t for t, _ in greedy_ids(lp)) == "ct"
    assert V.decode(t for t, _ in greedy_ids(lp, blank_penalty=0.5)) == "ct"
    assert V.decode(t for t, _ in greedy_ids(lp, blank_penalty=1.0)) == "cat"
    assert lp[3, 0] == -0.4  # the caller's tensor is left alone


def test_streaming_decoder_with_blank_penalty_equals_offline_any_split():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(40, len(V), generator=g).log_softmax(-1)
    offline = [t for t, _ in greedy_ids(lp, blank_penalty=0.7)]
    assert offline != [t for t, _ in greedy_ids(lp)]
    for cut in range(1, lp.shape[0]):
        d = GreedyCTCDecoder(V, 0.03, blank_penalty=0.7)
        d.update(lp[:cut])
        d.update(lp[cut:])
        assert [e.token for e in d.emissions] == offline, cut
