"""Sampling and zero-shot editing on a real (random-weight) tokenizer and transformer."""

from __future__ import annotations

import math

import pytest
import torch

from engine.generate import (
    Cancelled,
    EditSource,
    SamplingOptions,
    draw_codes,
    edit_source,
    filter_logits,
    sample,
    scale_masks,
    smooth_weights,
)
from engine.tokenizer import Tokenizer, TokenizerConfig
from engine.transformer import Transformer, TransformerConfig
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)

TEXT_DIM = 16


@pytest.fixture(scope="module")
def model() -> tuple[Transformer, Tokenizer]:
    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig.demo()).eval()
    for layer in tokenizer.quantizer.layers:
        layer.init_from(torch.randn(layer.codebook.shape))
    config = TransformerConfig(
        d_model=32,
        n_layers=2,
        n_heads=2,
        ff_size=64,
        dropout=0.0,
        text_dim=TEXT_DIM,
        scales=tokenizer.config.scales,
        codebook_sizes=tokenizer.config.codebook_sizes(),
        code_dim=tokenizer.config.code_dim,
    )
    transformer = Transformer(config).eval()
    with torch.no_grad():  # sharper heads than the initialisation, so samples depend on the inputs
        for head in transformer.heads:
            head.weight.mul_(50)
    return transformer, tokenizer


def generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def text_for(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, 5, TEXT_DIM, generator=torch.Generator().manual_seed(seed))


def run(model, text, lengths, seeds, options: SamplingOptions | None = None, **kwargs):
    transformer, tokenizer = model
    options = options or SamplingOptions()
    return sample(transformer, tokenizer.quantizer, text, torch.tensor(lengths), generators(*seeds), options, **kwargs)


def test_same_seed_same_tokens_and_other_seeds_differ(model) -> None:
    text = text_for(1)
    first, _ = run(model, text, [120], [7])
    again, _ = run(model, text, [120], [7])
    other, _ = run(model, text, [120], [8])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert [t.shape for t in first] == [(1, s) for s in model[1].config.scales]


def test_a_row_does_not_depend_on_the_rest_of_the_batch(model) -> None:
    text = text_for(3)
    batch, _ = run(model, text, [196, 40, 100], [1, 2, 3])
    alone, _ = run(model, text[1:2], [40], [2])
    assert all(torch.equal(b[1:2], a) for b, a in zip(batch, alone))


def test_z_hat_is_the_sum_of_the_sampled_codes(model) -> None:
    tokens, z_hat = run(model, text_for(2), [196, 80], [3, 4])
    assert torch.allclose(z_hat, model[1].quantizer.tokens_to_zhat(tokens), atol=1e-5)


def test_guidance_starts_at_zero_on_the_first_scale(model) -> None:
    text = text_for(1, seed=5)
    unguided, _ = run(model, text, [160], [11], SamplingOptions(guidance=0.0))
    guided, _ = run(model, text, [160], [11], SamplingOptions(guidance=4.0))
    assert torch.equal(unguided[0], guided[0])
    assert not all(torch.equal(a, b) for a, b in zip(unguided, guided))


def test_top_k_is_a_fraction_and_top_p_keeps_the_best_code() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05] * 2]))  # 10 codes
    kept = filter_logits(logits, top_k=0.8, top_p=1.0).isfinite()
    assert kept.sum() == 2  # 10 * (1 - 0.8)
    kept = filter_logits(logits[:, :5], top_k=0.0, top_p=0.6).isfinite()
    assert kept.tolist() == [[True, True, False, False, False]]  # 0.5 < 0.6 needs the second code
    kept = filter_logits(logits[:, :5], top_k=0.0, top_p=0.01).isfinite()
    assert kept.tolist() == [[True, False, False, False, False]]


def test_sampling_options_are_checked() -> None:
    with pytest.raises(ValueError, match="temperature > 0"):
        SamplingOptions(temperature=0.0)


def test_frame_masks_become_token_masks_per_scale() -> None:
    scales = TokenizerConfig.demo().scales
    mask = torch.zeros(1, 196, dtype=torch.bool)
    mask[0, 101] = True  # one frame: one final token, nothing at coarse scales
    masks = scale_masks(mask, scales)
    assert [m.shape for m in masks] == [(1, s) for s in scales]
    assert masks[-1][0].nonzero().flatten().tolist() == [25] and not masks[0].any()
    mask[0, 98:] = True  # the second half
    masks = scale_masks(mask, scales)
    for m in masks:
        assert m[0, -1] and not m[0, 0]


def test_smooth_mode_mixes_codes_as_the_release_does() -> None:
    """Gumbel-softmax over the unfiltered guided logits times (1 + r), tau = max(0.27 (1 - 0.95 r), 0.005),
    r = q / (Q - 1); written out here from the release's formula."""
    logits = torch.tensor([[[2.0, 1.0, 0.0, -1.0]]])
    gumbel = torch.tensor([[[0.1, -0.3, 0.5, 0.0]]])
    for ratio in (0.0, 4 / 9, 1.0):
        tau = max(0.27 * (1 - 0.95 * ratio), 0.005)
        scaled = [
            (value * (1 + ratio) + noise) / tau for value, noise in zip(logits[0, 0].tolist(), gumbel[0, 0].tolist())
        ]
        exponentials = [math.exp(x - max(scaled)) for x in scaled]
        expected = torch.tensor([[[x / sum(exponentials) for x in exponentials]]])
        assert (smooth_weights(logits, ratio, gumbel) - expected).abs().max() < 1e-6, ratio
    # The weights come from the unfiltered logits: a code top-k would drop still gets weight.
    options = SamplingOptions(smooth=True, top_k=0.5)
    _, weights = draw_codes(logits, options, [torch.Generator().manual_seed(0)], ratio=0.0)
    assert torch.isinf(filter_logits(logits.clone(), 0.5, 0.95)[0, 0, 2]) and weights[0, 0, 2] > 0
    assert weights.shape == logits.shape and torch.allclose(weights.sum(-1), torch.ones(1, 1))


@pytest.mark.parametrize("span", ["prefix", "suffix", "in-between"])
def test_editing_keeps_the_source_tokens_outside_the_mask(model, span) -> None:
    transformer, tokenizer = model
    source, _ = run(model, text_for(1, seed=1), [196], [21])
    frame_mask = torch.zeros(1, 196, dtype=torch.bool)
    region = {"prefix": slice(0, 60), "suffix": slice(120, 196), "in-between": slice(60, 140)}[span]
    frame_mask[0, region] = True
    resample = scale_masks(frame_mask, tokenizer.config.scales)
    for options in (SamplingOptions(), SamplingOptions(smooth=True)):
        edited, z_hat = run(model, text_for(1, seed=2), [196], [22], options, edit=EditSource(source, resample))
        changed = 0
        for q, (new, old, mask) in enumerate(zip(edited, source, resample)):
            assert torch.equal(new[~mask], old[~mask]), (span, q)
            changed += int((new[mask] != old[mask]).sum())
        assert changed > 0
    # Hard codes: z_hat is exactly the tokenizer's latent of the edited token maps.
    edited, z_hat = run(model, text_for(1, seed=2), [196], [22], edit=EditSource(source, resample))
    assert torch.allclose(z_hat, tokenizer.quantizer.tokens_to_zhat(edited), atol=1e-5)


def test_the_final_latent_stays_the_source_away_from_the_edit(model) -> None:
    transformer, tokenizer = model
    source, _ = run(model, text_for(1, seed=1), [196], [21])
    frame_mask = torch.zeros(1, 196, dtype=torch.bool)
    frame_mask[0, 80:120] = True  # tokens 20..29
    edit = edit_source(tokenizer.quantizer, source, frame_mask, seam_tokens=1)
    assert edit.keep_latent[0].logical_not().nonzero().flatten().tolist() == list(range(19, 31))
    edited, z_hat = run(model, text_for(1, seed=2), [196], [22], edit=edit)
    source_latent = tokenizer.quantizer.tokens_to_zhat(source)
    keep = edit.keep_latent[0]
    assert torch.equal(z_hat[..., keep], source_latent[..., keep])
    assert not torch.allclose(z_hat[..., ~keep], source_latent[..., ~keep])
    for new, old, mask in zip(edited, source, edit.resample):
        assert torch.equal(new[~mask], old[~mask])


def test_progress_after_each_scale_and_cancel_between_scales(model) -> None:
    steps = []
    run(model, text_for(1), [80], [0], on_scale=lambda step, total, z_hat: steps.append((step, total, z_hat.shape)))
    assert [s[0] for s in steps] == list(range(1, 11)) and steps[0][1] == 10
    assert steps[0][2] == (1, model[1].config.code_dim, 49)
    done = []
    with pytest.raises(Cancelled):
        run(
            model,
            text_for(1),
            [80],
            [0],
            on_scale=lambda step, total, z_hat: done.append(step),
            should_cancel=lambda: len(done) >= 3,
        )
    assert done == [1, 2, 3]
