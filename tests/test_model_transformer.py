"""The SAR transformer: official layout, block-causal masking, KV cache, scale RoPE, training loss."""

from __future__ import annotations

import pytest
import torch

from engine.checkpoint import load_state_strict
from engine.transformer import Transformer, TransformerConfig, scale_rotary_frequencies
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)

OFFICIAL_CODEBOOK_SIZES = (256, 313, 370, 427, 484, 540, 597, 654, 711, 768)  # the release's, written out

TINY = dict(d_model=32, n_layers=2, n_heads=2, ff_size=64, dropout=0.0, text_dim=16, code_dim=8)


def tiny_model(seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(**{**TINY, **overrides})).eval()


def teacher_inputs(model: Transformer, batch: int, generator: torch.Generator) -> torch.Tensor:
    scales = model.config.scales
    return torch.randn(batch, sum(scales) - scales[0], model.config.code_dim, generator=generator)


def test_official_preset_has_the_released_size_and_state_dict_layout() -> None:
    model = Transformer(TransformerConfig.official())
    parameters = sum(p.numel() for p in model.parameters())
    assert abs(parameters - 18.9e6) / 18.9e6 < 0.01, parameters
    state = model.state_dict()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert shapes["pos_start"] == (1, 3, 384)
    assert shapes["len_embed.weight"] == (49, 384) and shapes["lvl_embed.weight"] == (10, 384)
    assert shapes["input_process.weight"] == (384, 512) and shapes["input_emb.weight"] == (384, 512)
    assert state["freqs_cis"].dtype == torch.complex64 and shapes["freqs_cis"] == (236, 32)
    assert state["lvl_1L"].dtype == torch.int64 and shapes["lvl_1L"] == (1, 236)
    assert state["attn_mask"].dtype == torch.float32 and shapes["attn_mask"] == (1, 1, 236, 236)
    block_keys = {key.removeprefix("blocks.7.") for key in state if key.startswith("blocks.7.")}
    expected = {f"{norm}.scale" for norm in ("ln0", "ln0_t", "ln1", "ln2")}
    expected |= {
        f"{attn}.{proj}.{part}"
        for attn in ("attn0", "attn")
        for proj in ("key", "query", "value", "proj")
        for part in ("weight", "bias")
    }
    expected |= {"mlp.0.c_fc1.weight", "mlp.0.c_fc2.weight", "mlp.0.c_proj.weight"}
    assert block_keys == expected
    assert shapes["blocks.0.mlp.0.c_fc1.weight"] == (768, 384) and shapes["blocks.0.mlp.0.c_proj.weight"] == (384, 768)
    assert [shapes[f"heads.{q}.weight"] for q in range(10)] == [(size, 384) for size in OFFICIAL_CODEBOOK_SIZES]
    assert not any(key.startswith("blocks.8.") or key.startswith("clip_model") for key in state)


def test_scale_rope_spreads_every_scale_over_the_same_span() -> None:
    scales = TransformerConfig.official().scales
    freqs_cis = scale_rotary_frequencies(scales, head_dim=64, base=100.0, span=64.0)
    assert freqs_cis.shape == (236, 32)
    angles = torch.angle(freqs_cis[:, 0])  # w_0 = 1: the angle is the position
    positions = torch.cat([torch.linspace(0, 64, s) if s > 1 else torch.zeros(1) for s in scales])
    assert torch.allclose(torch.cos(angles), torch.cos(positions), atol=1e-5)
    last_of_first_scale = freqs_cis[scales[0] - 1, 31]  # position 64, w_31 = 100^(-62/64)
    assert torch.isclose(torch.angle(last_of_first_scale), torch.tensor(64 * 100 ** (-62 / 64)), atol=1e-5)


def test_a_scale_never_sees_finer_scales() -> None:
    model = tiny_model()
    generator = torch.Generator().manual_seed(1)
    text = torch.randn(2, 5, 16, generator=generator)
    lengths = torch.tensor([196, 40])
    inputs = teacher_inputs(model, 2, generator)
    logits = model(text, lengths, inputs)
    changed = inputs.clone()
    changed[:, model.scale_starts[5] - 3 :] += 1.0  # latents of scale 6 onwards
    logits_changed = model(text, lengths, changed)
    for q in range(10):
        same = torch.allclose(logits[q], logits_changed[q])
        assert same == (q < 5), q


@pytest.mark.parametrize(
    "zeroed, attending",
    [([], 4), ([2, 3], 2), ([1], 4)],
    ids=["all-text", "guidance-half-skips-attention", "a-zeroed-row-among-others-attends"],
)
def test_kv_cached_steps_give_the_full_pass_logits(zeroed, attending) -> None:
    """Rows of zeroed text at the batch's end (guidance's unconditional half) skip the
    cross-attention, whose output is the same for every query there; the logits stay the full pass's."""
    model = tiny_model(seed=3)
    generator = torch.Generator().manual_seed(2)
    text = torch.randn(4, 7, 16, generator=generator)
    text[zeroed] = 0.0
    lengths = torch.tensor([196, 100, 4, 196])
    inputs = teacher_inputs(model, 4, generator)
    with torch.no_grad():
        full = model(text, lengths, inputs)
        context, length_embedding = model.text_context(text, lengths)
        cache = model.new_cache()
        for q in range(10):
            span = slice(model.scale_starts[q] - 3, model.scale_starts[q + 1] - 3)
            stepped = model.step(q, context, length_embedding, None if q == 0 else inputs[:, span], cache)
            assert (stepped - full[q]).abs().max() < 1e-4
    assert cache[0].scales.length == 236 and cache[0].text.keys.shape[2] == 7
    assert cache[0].text.attending == attending and cache[0].text.constant.shape == (4 - attending, 1, 32)


def test_the_mask_means_the_same_in_either_saved_form_and_other_masks_are_refused() -> None:
    """The release saves 1 where a token may look, 0 elsewhere; this engine once saved the additive
    form (0 / -inf). Both load to the same model; a mask that is not block-causal is refused."""
    model = tiny_model(seed=4)
    generator = torch.Generator().manual_seed(5)
    text, lengths, inputs = (
        torch.randn(2, 5, 16, generator=generator),
        torch.tensor([196, 60]),
        teacher_inputs(model, 2, generator),
    )
    assert set(model.attn_mask.unique().tolist()) == {0.0, 1.0}
    with torch.no_grad():
        expected = model(text, lengths, inputs)
        for saved_mask in (
            model.attn_mask.clone(),
            torch.zeros_like(model.attn_mask).masked_fill(model.attn_mask == 0, float("-inf")),
        ):
            loaded = tiny_model(seed=9)
            load_state_strict(loaded, {**model.state_dict(), "attn_mask": saved_mask}, "saved.pt")
            assert torch.equal(loaded.attn_mask, model.attn_mask)
            assert all(torch.equal(a, b) for a, b in zip(loaded(text, lengths, inputs), expected))
    full = torch.ones_like(model.attn_mask)  # every token sees every other: not causal
    with pytest.raises(ValueError, match="not the block-causal mask"):
        load_state_strict(tiny_model(), {**model.state_dict(), "attn_mask": full}, "wrong.pt")


def test_partial_teacher_forcing_returns_the_covered_scales() -> None:
    model = tiny_model()
    text, lengths = torch.randn(1, 4, 16), torch.tensor([80])
    assert [logits.shape[1] for logits in model(text, lengths)] == [3]
    assert [logits.shape[1] for logits in model(text, lengths, torch.randn(1, 6 + 10, 8))] == [3, 6, 10]
    with pytest.raises(ValueError, match="whole scales"):
        model(text, lengths, torch.randn(1, 7, 8))


def test_bad_lengths_and_text_width_are_refused() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 4, 16), torch.tensor([42]))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 4, 16), torch.tensor([200]))
    with pytest.raises(ValueError, match="text features"):
        model(torch.randn(1, 4, 12), torch.tensor([40]))


def test_config_round_trips_and_rejects_unknown_keys() -> None:
    config = TransformerConfig.demo()
    assert TransformerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown transformer config keys"):
        TransformerConfig.from_dict({**config.to_dict(), "width": 3})
    with pytest.raises(ValueError, match="one size per scale"):
        TransformerConfig(scales=(3, 6), codebook_sizes=(10,))


def test_training_lowers_the_loss_on_real_tokenizer_tokens() -> None:
    from engine import tokenizer as tokenizer_module

    torch.manual_seed(0)
    tokenizer = tokenizer_module.Tokenizer(tokenizer_module.TokenizerConfig.demo()).eval()
    config = TransformerConfig(
        **{**TINY, "code_dim": tokenizer.config.code_dim},
        scales=tokenizer.config.scales,
        codebook_sizes=tokenizer.config.codebook_sizes(),
    )
    model = Transformer(config).train()
    generator = torch.Generator().manual_seed(0)
    motion = torch.randn(4, 196, 263, generator=generator).cumsum(1) * 0.1  # smooth in time
    with torch.no_grad():
        tokens = tokenizer.encode_tokens(motion)
    text, lengths = torch.randn(4, 5, 16, generator=generator), torch.tensor([196, 120, 40, 80])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, stats = model.training_loss(text, lengths, tokens, tokenizer.quantizer)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(stats["loss"])
    assert set(stats) >= {"loss", "ce_first", "ce_last", "accuracy_last"}
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
