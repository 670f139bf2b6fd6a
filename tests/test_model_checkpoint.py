"""The engine's checkpoint file: an exact round trip, random models of both presets, and clear
errors for damaged files, missing keys and wrong shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import checkpoint
from engine.tokenizer import Tokenizer, TokenizerConfig
from engine.transformer import Transformer, TransformerConfig
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)


def tiny_checkpoint() -> checkpoint.Checkpoint:
    torch.manual_seed(0)
    tokenizer_config = TokenizerConfig(width=16, code_dim=16, nb_code_st=8, nb_code_ed=32, slot_group=1)
    tokenizer = Tokenizer(tokenizer_config)
    for layer in tokenizer.quantizer.layers:
        layer.init_from(torch.randn(layer.codebook.shape))
    transformer_config = TransformerConfig(
        d_model=32,
        n_layers=1,
        n_heads=2,
        ff_size=64,
        text_dim=24,
        scales=tokenizer_config.scales,
        codebook_sizes=tuple(tokenizer_config.codebook_sizes()),
        code_dim=16,
    )
    rng = np.random.default_rng(0)
    return checkpoint.Checkpoint(
        tokenizer,
        Transformer(transformer_config),
        rng.normal(size=263).astype(np.float32),
        rng.uniform(0.1, 1.0, 263).astype(np.float32),
        "all-minilm-l6-v2",
        {"name": "tiny", "preset": "tiny", "dataset": {"clips": 3}},
    )


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert state_a[key].dtype == state_b[key].dtype and torch.equal(state_a[key], state_b[key]), key


def test_round_trip_keeps_every_tensor_and_setting(tmp_path):
    original = tiny_checkpoint()
    path = tmp_path / "model.pt"
    checkpoint.save(path, original)
    assert not list(tmp_path.glob("*.partial"))
    loaded = checkpoint.load(path)
    assert_same_state(original.tokenizer, loaded.tokenizer)
    assert_same_state(original.transformer, loaded.transformer)
    assert loaded.tokenizer.config == original.tokenizer.config
    assert loaded.transformer.config == original.transformer.config
    assert np.array_equal(loaded.mean, original.mean) and np.array_equal(loaded.std, original.std)
    assert loaded.text_encoder == "all-minilm-l6-v2" and loaded.meta == original.meta
    assert not loaded.tokenizer.training and not loaded.transformer.training
    # a tokenizer-only file (as written during tokenizer training)
    checkpoint.save(
        path, checkpoint.Checkpoint(original.tokenizer, None, original.mean, original.std, "all-minilm-l6-v2")
    )
    assert checkpoint.load(path).transformer is None


def test_random_models_of_both_presets(tmp_path):
    demo = checkpoint.load(checkpoint.create_random(tmp_path / "demo.pt"))
    assert demo.meta["preset"] == "demo" and demo.transformer.config.text_dim == 384
    assert demo.tokenizer.quantizer.layers[0].codebook.abs().sum() > 0  # codebooks filled, not zeros
    size_mb = (tmp_path / "demo.pt").stat().st_size / 1e6
    assert 1 < size_mb < 40, size_mb
    official = checkpoint.load(checkpoint.create_random(tmp_path / "official.pt", "official", "clip-vit-b32"))
    assert sum(p.numel() for p in official.tokenizer.parameters()) == 34_996_127
    assert official.transformer.config.text_dim == 512
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        checkpoint.create_random(tmp_path / "x.pt", "huge")


def rewrite(path, edit) -> None:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def test_damaged_and_mismatched_files_name_what_is_wrong(tmp_path):
    path = tmp_path / "model.pt"
    checkpoint.save(path, tiny_checkpoint())
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="is not a MoSa checkpoint"):
        checkpoint.load(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="is not a MoSa checkpoint") as unreadable:
        checkpoint.load(path)
    # One line, torch's reason only: not its advice to load with weights_only=False (which runs code).
    assert "\n" not in str(unreadable.value) and "weights_only" not in str(unreadable.value)
    assert "Unsupported operand" in str(unreadable.value)
    torch.save({"vq_model": {}}, path)
    with pytest.raises(ValueError, match="import-official"):
        checkpoint.load(path)

    path.write_bytes(good)
    rewrite(path, lambda p: p["tokenizer"]["state_dict"].pop("quantizer.phis.3.phi.0.0.weight"))
    with pytest.raises(ValueError, match=r"tokenizer: missing keys \['quantizer.phis.3.phi.0.0.weight'\]"):
        checkpoint.load(path)

    path.write_bytes(good)
    rewrite(path, lambda p: p["transformer"]["state_dict"].update({"heads.2.weight": torch.zeros(5, 32)}))
    with pytest.raises(
        ValueError, match=r"transformer: 'heads.2.weight' has shape \(5, 32\); the model expects \(\d+, 32\)"
    ):
        checkpoint.load(path)

    path.write_bytes(good)
    rewrite(path, lambda p: p.update({"std": torch.ones(200)}))
    with pytest.raises(ValueError, match=r"'std' has shape \(200,\); expected \(263,\)"):
        checkpoint.load(path)

    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="JSON"):
        original = tiny_checkpoint()
        original.meta = {"when": object()}
        checkpoint.save(path, original)
