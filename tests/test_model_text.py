"""Text encoders: the real all-MiniLM-L6-v2 offline, CLIP's loading code on a tiny saved model."""

from __future__ import annotations

import pytest
import torch

from engine.text_encoders import CLIP_TOKENS, MINILM_TOKENS, load_text_encoder
from tests.model_fixtures import TINY_CLIP_WIDTH, one_thread, save_tiny_clip  # noqa: F401  (one_thread: autouse)


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("all-minilm-l6-v2")


def test_minilm_loads_offline_and_gives_the_sentence_embedding(minilm) -> None:
    features = minilm.encode(["a person walks forward", "a man jumps up and down"])
    assert minilm.name == "all-minilm-l6-v2" and minilm.dim == 384
    assert features.shape == (2, 1, 384) and features.dtype == torch.float32
    assert torch.allclose(
        features[:, 0].norm(dim=-1), torch.ones(2), atol=1e-5
    )  # unit length, as sentence-transformers
    # The mean over the real tokens only: a prompt longer than MINILM_TOKENS is cut there.
    long = " ".join(["walk"] * (2 * MINILM_TOKENS))
    assert torch.allclose(minilm.encode([long]), minilm.encode([" ".join(["walk"] * MINILM_TOKENS)]), atol=1e-5)
    assert not features.requires_grad and torch.isfinite(features).all()
    assert (features[0] - features[1]).abs().max() > 0.1  # different prompts, different features


def test_minilm_features_do_not_depend_on_the_rest_of_the_batch(minilm) -> None:
    alone = minilm.encode(["a man jumps"])
    batched = minilm.encode(["a person slowly walks in a wide circle and then sits down", "a man jumps"])
    assert torch.allclose(alone[0], batched[1], atol=1e-5)


def test_similar_prompts_are_closer_than_unrelated_ones(minilm) -> None:
    walk, stroll, cartwheel = minilm.encode(
        ["a person walks forward", "someone strolls ahead", "a person does a cartwheel"]
    )[:, 0]
    similarity = torch.nn.functional.cosine_similarity
    assert similarity(walk, stroll, dim=0) > similarity(walk, cartwheel, dim=0) + 0.2


def test_prompts_must_be_a_list_of_strings(minilm) -> None:
    with pytest.raises(ValueError, match="list of strings"):
        minilm.encode("a person walks")


def test_clip_loads_a_saved_model_and_pads_to_77_tokens(tmp_path) -> None:
    folder = save_tiny_clip(tmp_path / "clip")
    clip = load_text_encoder("clip-vit-b32", path=folder)
    features = clip.encode(["a person walks", "walk"])
    assert clip.name == "clip-vit-b32" and clip.dim == TINY_CLIP_WIDTH
    assert features.shape == (2, CLIP_TOKENS, TINY_CLIP_WIDTH)
    # Causal attention: a real token's features depend only on the tokens before it.
    again = clip.encode(["walk"])
    assert torch.allclose(features[1], again[0], atol=1e-6)
    ids = clip.tokenizer("walk")["input_ids"]
    assert len(ids) == 3  # start, the merged word, end: the saved BPE merges load too


def test_clip_folder_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOSA_CLIP_PATH", str(save_tiny_clip(tmp_path / "clip")))
    assert load_text_encoder("clip-vit-b32").dim == TINY_CLIP_WIDTH


def test_missing_clip_weights_name_where_it_looked(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not found in the folder .*nothing-here.*hf download"):
        load_text_encoder("clip-vit-b32", path=tmp_path / "nothing-here")


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown text encoder 'bert'"):
        load_text_encoder("bert")
