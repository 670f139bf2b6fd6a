"""The CAQ-VAE tokenizer: official layout and size, the quantizer's lookup and codebook upkeep,
tokens that rebuild the model's own latent, and training on real motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.checkpoint import load_state_strict
from engine.tokenizer import Codebook, Tokenizer, TokenizerConfig
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)

OFFICIAL_CODEBOOK_SIZES = [256, 313, 370, 427, 484, 540, 597, 654, 711, 768]


def tiny_config() -> TokenizerConfig:
    return TokenizerConfig(width=16, code_dim=16, nb_code_st=8, nb_code_ed=32, slot_group=1)


def test_official_preset_size_and_release_keys():
    with torch.device("meta"):
        tokenizer = Tokenizer(TokenizerConfig.official())
    assert sum(p.numel() for p in tokenizer.parameters()) == 34_996_127  # the release's count
    assert tokenizer.config.codebook_sizes() == OFFICIAL_CODEBOOK_SIZES
    shapes = {name: tuple(t.shape) for name, t in tokenizer.state_dict().items()}
    assert shapes["virtual_slot"] == (1960, 263) and shapes["initted"] == (1,)
    assert not tokenizer.virtual_slot.requires_grad
    assert shapes["encoder.down.2.attn.1.qkv.weight"] == (768, 256, 1)
    assert shapes["encoder.down.1.block.0.nin_shortcut.weight"] == (512, 256, 1)
    assert "encoder.down.2.downsample.conv.weight" not in shapes
    assert shapes["decoder.up.0.upsample.conv.weight"] == (256, 256, 3)
    assert shapes["decoder.up.2.attn.2.proj_out.weight"] == (256, 256, 1)
    assert shapes["decoder.conv_out.weight"][:2] == (263, 256)
    assert shapes["encoder.conv_out.weight"] == (512, 256, 3) and shapes["decoder.conv_in.weight"] == (256, 512, 3)
    for q, size in enumerate(OFFICIAL_CODEBOOK_SIZES):
        assert shapes[f"quantizer.layers.{q}.codebook"] == (size, 512)
        assert shapes[f"quantizer.layers.{q}.code_sum"] == (size, 512)
        assert shapes[f"quantizer.layers.{q}.code_count"] == (size,)
        assert shapes[f"quantizer.phis.{q}.phi.1.0.weight"] == (512, 512, 3)


def test_a_state_with_1_wide_code_space_kernels_loads_and_decodes_the_same():
    """Checkpoints written before the engine followed the release's 3-wide kernels keep working."""
    torch.manual_seed(0)
    tokenizer = Tokenizer(tiny_config()).eval()
    for convolution in (tokenizer.encoder.conv_out, tokenizer.decoder.conv_in):
        convolution.weight.data[..., ::2] = 0  # what an old 1x1 kernel computes: only the middle tap
    state = tokenizer.state_dict()
    for name in ("encoder.conv_out.weight", "decoder.conv_in.weight"):
        state[name] = state[name][..., 1:2].clone()  # saved as the old 1x1 kernel
    motion = torch.randn(2, 80, 263, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_tokens = tokenizer.encode_tokens(motion)
        expected = tokenizer.decode_tokens(expected_tokens)
        loaded = Tokenizer(tiny_config()).eval()
        load_state_strict(loaded, state, "old.pt")
        assert all(torch.equal(a, b) for a, b in zip(loaded.encode_tokens(motion), expected_tokens))
        assert torch.equal(loaded.decode_tokens(expected_tokens), expected)
    assert loaded.encoder.conv_out.weight.shape[-1] == 3


def test_lookup_picks_the_code_of_highest_cosine_not_nearest_euclidean():
    codebook = Codebook(size=2, dim=2, mu=0.99)
    codebook.codebook.copy_(torch.tensor([[10.0, 0.0], [0.6, 0.8]]))
    # Euclidean-nearest is code 1, but code 0 points the same way as the query.
    query = torch.tensor([[1.0, 0.05]])
    assert torch.cdist(query, codebook.codebook).argmin().item() == 1
    assert codebook.lookup(query).tolist() == [0]
    random_codes = torch.randn(50, 8)
    codebook = Codebook(size=50, dim=8, mu=0.99)
    codebook.codebook.copy_(random_codes)
    queries = torch.randn(20, 8)
    expected = F.cosine_similarity(queries[:, None], random_codes[None], dim=-1).argmax(1)
    assert torch.equal(codebook.lookup(queries), expected)


def test_codebook_initialises_from_the_first_batch_and_resets_dead_codes():
    torch.manual_seed(0)
    codebook = Codebook(size=6, dim=3, mu=0.9)
    batch = torch.randn(40, 3)
    codebook.init_from(batch)
    assert codebook.initted.item() == 1.0
    assert torch.equal(codebook.codebook, batch[:6])  # the release takes the first V vectors
    # all vectors go to code 0: it moves towards their mean; the unused codes die and are
    # re-seeded from the batch
    before = codebook.codebook.clone()
    fresh = torch.randn(30, 3) + 5.0
    codebook.ema_update(fresh, torch.zeros(30, dtype=torch.long))
    expected_code0 = (0.9 * before[0] + 0.1 * fresh.sum(0)) / (0.9 + 0.1 * 30)
    assert torch.allclose(codebook.codebook[0], expected_code0, atol=1e-5)
    assert codebook.code_count[1:].max() < 1.0
    assert torch.equal(codebook.codebook[1:], fresh[1:6])  # dead codes: the batch's first vectors
    assert codebook.code_count[0] > 1.0


def test_the_ema_update_looks_up_each_full_resolution_vector_on_its_own():
    """The release assigns each of the 49 residual vectors its own nearest code for the EMA update,
    not the code of the (downsampled) token that covers it."""
    torch.manual_seed(2)
    quantizer = Tokenizer(tiny_config()).quantizer
    for layer in quantizer.layers:
        layer.init_from(torch.randn(64, 16))
    z = torch.randn(3, 16, 49)
    layer = quantizer.layers[0]
    before_sum, before_count = layer.code_sum.clone(), layer.code_count.clone()
    vectors = z.transpose(1, 2).reshape(-1, 16)
    own_codes = (F.normalize(vectors, dim=-1) @ F.normalize(layer.codebook, dim=-1).T).argmax(-1)
    quantizer.train()(z)
    counts = torch.bincount(own_codes, minlength=layer.code_count.shape[0]).float()
    assert torch.allclose(layer.code_count, layer.mu * before_count + (1 - layer.mu) * counts)
    onehot = F.one_hot(own_codes, layer.code_count.shape[0]).float()
    assert torch.allclose(layer.code_sum, layer.mu * before_sum + (1 - layer.mu) * onehot.T @ vectors, atol=1e-5)


def test_tokens_rebuild_the_latent_of_the_forward_pass():
    torch.manual_seed(1)
    tokenizer = Tokenizer(tiny_config())
    x = torch.randn(3, 196, 263)
    tokenizer.train()
    tokenizer(x)  # initialises the codebooks from this batch
    tokenizer.eval()
    with torch.no_grad():
        recon, codes, _ = tokenizer(x)
        tokens = tokenizer.encode_tokens(x)
        assert [t.shape for t in tokens] == [(3, s) for s in tokenizer.config.scales]
        assert all(torch.equal(a, b) for a, b in zip(codes, tokens))
        assert torch.allclose(tokenizer.decode_tokens(tokens), recon, atol=1e-5)
        # the transformer's teacher inputs are z_hat after each scale, downsampled to the next
        inputs = tokenizer.quantizer.teacher_inputs(tokens)
        assert inputs.shape == (3, sum(tokenizer.config.scales[1:]), 16)
        z_hat = tokenizer.quantizer.tokens_to_zhat(tokens[:4])
        start = sum(tokenizer.config.scales[1:4])
        assert torch.allclose(inputs[:, start : start + 20], tokenizer.quantizer.next_input(3, z_hat), atol=1e-6)
        assert torch.allclose(
            tokenizer.quantizer.add_scale(4, z_hat, tokens[4]), tokenizer.quantizer.tokens_to_zhat(tokens[:5])
        )


def test_short_motions_are_padded_and_bad_shapes_rejected():
    tokenizer = Tokenizer(tiny_config()).eval()
    short = torch.randn(2, 40, 263)
    padded = tokenizer.pad(short)
    assert padded.shape == (2, 196, 263) and torch.equal(padded[:, :40], short) and not padded[:, 40:].any()
    assert tokenizer.decode_tokens(tokenizer.encode_tokens(short)).shape == (2, 196, 263)
    with pytest.raises(ValueError, match="multiple of 4"):
        tokenizer.encode_tokens(torch.randn(1, 42, 263))
    with pytest.raises(ValueError, match="263"):
        tokenizer.encode_tokens(torch.randn(1, 40, 200))
    with pytest.raises(ValueError, match="one per scale"):
        tokenizer.decode_tokens(tokenizer.encode_tokens(short)[:9])


def test_training_loss_decreases_on_real_motion():
    from engine import representation
    from engine.datasets import deepmimic

    features = [
        representation.joints_to_features(deepmimic.load_joints(name, min_seconds=5))
        for name in ("walk", "run", "jump", "dance_a")
    ]
    mean, std = representation.mean_std(features)
    windows = [representation.normalize(f, mean, std)[start : start + 40] for f in features for start in (0, 40)]
    x = torch.tensor(np.stack(windows), dtype=torch.float32)  # (8, 40, 263): padded to 196 inside

    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(width=32, code_dim=32, nb_code_st=16, nb_code_ed=64, slot_group=1)).train()
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=1e-3, betas=(0.9, 0.99))
    losses = []
    for _ in range(20):
        loss, stats = tokenizer.training_loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(stats["reconstruction"])
    assert tokenizer.initted.item() == 1.0
    assert np.mean(losses[-3:]) < 0.85 * losses[0], losses
    assert all(np.isfinite(losses)) and set(stats) >= {"loss", "joints", "commit", "usage_0", "usage_9"}
    assert all(0 < u <= 1 for u in tokenizer.quantizer.usage())
    # padded frames carry no loss: a mask that drops the second half changes the reconstruction term
    masked = torch.ones(8, 40)
    masked[:, 20:] = 0
    assert (
        tokenizer.eval().training_loss(x, masked)[1]["reconstruction"]
        != tokenizer.training_loss(x)[1]["reconstruction"]
    )
