"""Guo et al.'s evaluator in the engine: the released file layout loads strictly, and its inputs are built as the release builds them."""

from __future__ import annotations

import importlib.util
import os
import pickle

import numpy as np
import pytest
import torch

from engine.evaluator import Evaluator
from engine.word_vectors import POS_TAGS, WordVectors, caption_rows, read_plain_pickle, tokens_from_tagged
from tests.evaluator_files import (
    RELEASE_SHAPES,
    VOCABULARY,
    random_states,
    write_evaluator,
    write_glove,
    write_glove_6b,
)
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)


@pytest.fixture(scope="module")
def states():
    return random_states(seed=1)


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory, states) -> Evaluator:
    return Evaluator.load(write_evaluator(tmp_path_factory.mktemp("evaluator"), states), device="cpu")


def test_the_released_layout_loads_strictly_and_embeds(evaluator, states) -> None:
    assert evaluator.epoch == 96
    for name, shapes in RELEASE_SHAPES.items():
        loaded = getattr(evaluator, name).state_dict()
        assert {key: tuple(t.shape) for key, t in loaded.items()} == shapes
        assert all(torch.equal(loaded[key], states[name][key]) for key in shapes)
    frames = torch.tensor([196, 120, 40])
    motions = torch.randn(3, 196, 263)
    embedded = evaluator.embed_motions(motions, frames)
    assert embedded.shape == (3, 512) and torch.isfinite(embedded).all()
    # rows in any order give the same embeddings, and the GRU reads only frames // 4 movements
    order = torch.tensor([2, 0, 1])
    assert torch.allclose(evaluator.embed_motions(motions[order], frames[order]), embedded[order], atol=1e-5)
    beyond = motions.clone()
    beyond[1, 140:] = 5.0  # more than two frames past the end: outside every movement the GRU reads
    assert torch.allclose(evaluator.embed_motions(beyond, frames)[1], embedded[1], atol=1e-6)
    words, pos = torch.randn(2, 22, 300), torch.zeros(2, 22, 15)
    text = evaluator.embed_texts(words, pos, torch.tensor([7, 22]))
    words[0, 7:] = 9.0  # padding after a caption's length changes nothing
    assert torch.allclose(evaluator.embed_texts(words, pos, torch.tensor([7, 22])), text, atol=1e-6)


def test_a_wrong_shape_names_the_key(tmp_path, states) -> None:
    bad = {name: dict(state) for name, state in states.items()}
    bad["motion_encoder"]["gru.weight_hh_l0_reverse"] = torch.zeros(3072, 512)
    with pytest.raises(
        ValueError,
        match=r"motion_encoder\.gru\.weight_hh_l0_reverse has shape \(3072, 512\); the evaluator expects \(3072, 1024\)",
    ):
        Evaluator.load(write_evaluator(tmp_path / "shape", bad))
    del bad["motion_encoder"]["gru.weight_hh_l0_reverse"]
    with pytest.raises(ValueError, match=r"'motion_encoder' does not match .* missing \['gru.weight_hh_l0_reverse'\]"):
        Evaluator.load(write_evaluator(tmp_path / "missing", bad))


def test_files_that_are_not_the_evaluator_are_refused(tmp_path, states) -> None:
    with pytest.raises(FileNotFoundError, match=r"text_mot_match/model/finest\.tar"):
        Evaluator.load(tmp_path)
    folder = write_evaluator(tmp_path / "code", states)
    torch.save(
        {"movement_encoder": os.getcwd, "motion_encoder": {}, "text_encoder": {}},
        folder / "text_mot_match/model/finest.tar",
    )
    with pytest.raises(ValueError, match="not a readable weights file"):  # weights_only: no code runs
        Evaluator.load(folder)
    folder = write_evaluator(tmp_path / "no-stats", states)
    (folder / "Comp_v6_KLD005/meta/std.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"Comp_v6_KLD005/meta/std\.npy"):
        Evaluator.load(folder)


def test_humanml3d_words_read_as_the_release_reads_them(tmp_path) -> None:
    folder = write_glove(tmp_path / "glove")
    words = WordVectors.humanml3d(folder)
    table = np.load(folder / "our_vab_data.npy")
    index = pickle.loads((folder / "our_vab_idx.pkl").read_bytes())
    vectors, pos, length = caption_rows(
        ["a/DET", "person/NOUN", "walk/VERB", "somersault/NOUN", "left/ADV", "hand/NOUN"], words
    )
    assert length == 8 and vectors.shape == (22, 300) and pos.shape == (22, 15)
    tags = [POS_TAGS[i] for i in pos.argmax(axis=1)]
    # sos, a, person, walk (a motion word), unknown -> unk/OTHER, left (a place word), hand (a body word), eos, then unk padding
    assert tags[:8] == ["OTHER", "DET", "NOUN", "Act_VIP", "OTHER", "Loc_VIP", "Body_VIP", "OTHER"]
    assert tags[8:] == ["OTHER"] * 14
    for row, word in zip(vectors, ["sos", "a", "person", "walk", "unk", "left", "hand", "eos"] + ["unk"] * 14):
        assert np.array_equal(row, table[index[word]]), word
    _, _, cropped = caption_rows(["a/DET"] * 25, words)
    assert cropped == 22  # 20 words kept, then sos and eos


def test_motionx_words_come_from_glove_6b_with_zeros_for_unknown_words(tmp_path) -> None:
    path = write_glove_6b(tmp_path / "glove.6B.300d.txt")
    words = WordVectors.glove_6b(tmp_path, {"walk", "person's", "unk", "sos", "eos"})
    assert set(words.vectors) == {"walk", "person's", "unk", "sos", "eos"}  # only the words asked for are kept
    vector, pos = words["somersault/NOUN"]
    assert not vector.any() and POS_TAGS[int(pos.argmax())] == "NOUN"  # an unknown word keeps its own tag
    vector, pos = words["walk/VERB"]
    line = next(row for row in path.read_text().splitlines() if row.startswith("walk "))
    assert (
        np.allclose(vector, np.array(line.split()[1:], dtype=np.float32)) and POS_TAGS[int(pos.argmax())] == "Act_VIP"
    )


def test_missing_or_unsafe_vector_files_say_what_to_do(tmp_path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"lacks our_vab_data\.npy, our_vab_words\.pkl, our_vab_idx\.pkl.*--glove"
    ):
        WordVectors.humanml3d(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"glove\.6B\.300d\.txt.*--glove"):
        WordVectors.glove_6b(tmp_path)
    folder = write_glove(tmp_path / "glove")
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(os.system))  # a pickle that would import a function
    with pytest.raises(ValueError, match="refusing to load posix.system"):
        WordVectors.humanml3d(folder)
    (tmp_path / "numpy.pkl").write_bytes(pickle.dumps({"walk": np.int64(3)}))  # numpy scalars in an index are data
    assert read_plain_pickle(tmp_path / "numpy.pkl") == {"walk": 3}
    assert len(VOCABULARY) == len(WordVectors.humanml3d(write_glove(tmp_path / "again")).vectors)


def test_plain_captions_are_tokenised_as_humanml3d_does() -> None:
    """spaCy's (text, POS, lemma) per word -> tokens: words only, nouns and verbs lemmatised, 'left' kept."""
    tagged = [
        ("A", "DET", "a"),
        ("man", "NOUN", "man"),
        ("walks", "VERB", "walk"),
        ("left", "VERB", "leave"),
        (",", "PUNCT", ","),
        ("waving", "VERB", "wave"),
        ("happily", "ADV", "happily"),
    ]
    assert tokens_from_tagged(tagged) == ["A/DET", "man/NOUN", "walk/VERB", "left/VERB", "wave/VERB", "happily/ADV"]


def test_plain_captions_without_spacy_say_what_to_install() -> None:
    from engine.word_vectors import SpacyTagger

    if importlib.util.find_spec("spacy") is not None:
        pytest.skip("spaCy is installed here, so its absence cannot be shown")
    with pytest.raises(RuntimeError, match="spaCy is not installed.*en_core_web_sm"):
        SpacyTagger()("a person walks")
