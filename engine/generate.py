"""Sampling the SAR transformer scale by scale, and zero-shot editing with the same loop.

One step per scale with the transformer's key/value cache. The conditioned and unconditioned
(zeroed text) halves run as one batch for classifier-free guidance, whose weight grows from none
at the first scale to `guidance` at the last. Every row draws from its own seeded generator, so
a sample depends only on its prompt, length and seed, not on what else is in the batch.

Editing (mosa-spec.md section 4) is the same loop: where a scale's mask is off, the source
motion's code replaces the sample before it feeds z_hat and the next scale's input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

FRAMES_PER_TOKEN = 4


class Cancelled(Exception):
    """The caller asked to stop between two scales."""


@dataclass
class SamplingOptions:
    guidance: float = 4.0  # classifier-free guidance weight at the last scale
    temperature: float = 1.0
    top_k: float = 0.8  # a fraction: keep the V * (1 - top_k) most likely codes
    top_p: float = 0.95  # then the smallest set of codes with this much probability
    smooth: bool = False  # feed a Gumbel-softmax mix of codes instead of the sampled code (smooth_weights)

    def __post_init__(self) -> None:
        if not self.guidance >= 0 or not self.temperature > 0 or not 0 <= self.top_k < 1 or not 0 < self.top_p <= 1:
            raise ValueError(
                f"sampling options {self}: expected guidance >= 0, temperature > 0, 0 <= top_k < 1, 0 < top_p <= 1"
            )


@dataclass
class EditSource:
    """What editing keeps: the source's token maps and, per scale, where to sample instead."""

    tokens: list[Tensor]  # per scale (B, s_q) codes of the source motion
    resample: list[Tensor]  # per scale (B, s_q) bool, True = take the model's sample
    keep_latent: Tensor | None = None  # (B, 49) bool: final latent positions that stay the source's


def edit_source(quantizer, tokens: list[Tensor], frame_mask: Tensor, seam_tokens: int = 1) -> EditSource:
    """The edit of a source motion (its token maps) where frame_mask (B, 196) is True.

    Besides the release's per-scale token masks, the final latent is reset to the source's
    away from the mask (dilated by `seam_tokens` for the seam). A resampled coarse token moves
    the latent over its whole interpolation span, and the release lets that drift into the
    unedited frames; keeping the source latent there confines the edit to the span.
    """
    resample = scale_masks(frame_mask, quantizer.scales)
    edited = resample[-1].float()[:, None]
    if seam_tokens > 0:
        edited = F.max_pool1d(edited, kernel_size=2 * seam_tokens + 1, stride=1, padding=seam_tokens)
    return EditSource(tokens, resample, keep_latent=edited[:, 0] == 0)


# Called after each scale with (scales done, total scales, z_hat so far (B, code_dim, 49)).
ScaleCallback = Callable[[int, int, Tensor], None]


def scale_masks(frame_mask: Tensor, scales: tuple[int, ...]) -> list[Tensor]:
    """A per-frame mask (B, 4 * s_Q) -> per-scale token masks [(B, s_q) bool].

    A final token is resampled when any of its 4 frames is; coarser scales take the linearly
    interpolated token mask above one half.
    """
    tokens = frame_mask.unflatten(1, (-1, FRAMES_PER_TOKEN)).any(dim=2).float()
    if tokens.shape[1] != scales[-1]:
        raise ValueError(f"frame mask covers {frame_mask.shape[1]} frames; expected {FRAMES_PER_TOKEN * scales[-1]}")
    return [F.interpolate(tokens[:, None], size=size, mode="linear")[:, 0] > 0.5 for size in scales]


def filter_logits(logits: Tensor, top_k: float, top_p: float) -> Tensor:
    """Top-k (as a fraction of the codebook) then nucleus filtering; removed codes get -inf."""
    keep = max(1, int(logits.shape[-1] * (1 - top_k)))
    kth_best = logits.topk(keep, dim=-1).values[..., -1:]
    logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probabilities = sorted_logits.softmax(dim=-1)
        mass_before = probabilities.cumsum(dim=-1) - probabilities
        sorted_logits = sorted_logits.masked_fill(mass_before > top_p, float("-inf"))  # the best code always stays
        logits = torch.empty_like(logits).scatter_(-1, order, sorted_logits)
    return logits


def draw_codes(
    logits: Tensor, options: SamplingOptions, generators: list[torch.Generator], ratio: float
) -> tuple[Tensor, Tensor | None]:
    """Sample codes (B, s) from guided logits (B, s, V), each row with its own generator.

    In smooth mode also return the Gumbel-softmax weights (B, s, V) that mix the codebook;
    `ratio` is the scale's place, q / (Q - 1).
    """
    filtered = filter_logits(logits / options.temperature, options.top_k, options.top_p)
    probabilities = filtered.softmax(dim=-1)
    codes = torch.stack([torch.multinomial(row, 1, generator=g)[:, 0] for row, g in zip(probabilities, generators)])
    if not options.smooth:
        return codes, None
    uniform = torch.stack([torch.rand(row.shape, generator=g, device=row.device) for row, g in zip(logits, generators)])
    return codes, smooth_weights(logits, ratio, -torch.log(-torch.log(uniform.clamp(1e-10, 1.0))))


def smooth_weights(logits: Tensor, ratio: float, gumbel: Tensor) -> Tensor:
    """The release's smooth mode: a Gumbel-softmax over the unfiltered guided logits sharpened by
    (1 + ratio), at a temperature falling from 0.27 to 0.005 over the scales (after MaskGIT)."""
    tau = max(0.27 * (1 - 0.95 * ratio), 0.005)
    return ((logits * (1 + ratio) + gumbel) / tau).softmax(dim=-1)


def mixed_contribution(quantizer, q: int, weights: Tensor) -> Tensor:
    """Like quantizer.scale_contribution, for a soft mix of codes (B, s_q, V) instead of codes."""
    vectors = (weights @ quantizer.layers[q].codebook.unsqueeze(0)).transpose(1, 2)  # batched, as the release rounds it
    return quantizer.phis[q](F.interpolate(vectors, size=quantizer.latent_length, mode="linear"))


@torch.no_grad()
def sample(
    transformer,
    quantizer,
    text: Tensor,
    lengths: Tensor,
    generators: list[torch.Generator],
    options: SamplingOptions,
    edit: EditSource | None = None,
    on_scale: ScaleCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[list[Tensor], Tensor]:
    """Token maps [(B, s_q)] and the final latent z_hat (B, code_dim, 49) for text (B, Lt, dim)."""
    scales = transformer.config.scales
    batch = text.shape[0]
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} generators for {batch} rows; expected one per row")
    guided = options.guidance > 0
    if guided:  # rows [0, B) see the text, rows [B, 2B) see none
        text, lengths = torch.cat([text, torch.zeros_like(text)]), torch.cat([lengths, lengths])
    context, length_embedding = transformer.text_context(text, lengths)
    cache = transformer.new_cache()
    z_hat = text.new_zeros(batch, transformer.config.code_dim, quantizer.latent_length)
    latent, tokens = None, []
    for q in range(len(scales)):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        step_input = None if latent is None else (torch.cat([latent, latent]) if guided else latent)
        logits = transformer.step(q, context, length_embedding, step_input, cache).float()
        if guided:
            conditioned, unconditioned = logits.chunk(2)
            weight = options.guidance * q / (len(scales) - 1)
            logits = (1 + weight) * conditioned - weight * unconditioned
        codes, weights = draw_codes(logits, options, generators, ratio=q / (len(scales) - 1))
        if edit is not None:
            keep = ~edit.resample[q]
            codes = torch.where(keep, edit.tokens[q], codes)
            if weights is not None:  # the source's own code, one-hot, where it is kept
                source = F.one_hot(edit.tokens[q], weights.shape[-1]).type_as(weights)
                weights = torch.where(keep[..., None], source, weights)
        if weights is None:
            z_hat = quantizer.add_scale(q, z_hat, codes)
        else:
            z_hat = z_hat + mixed_contribution(quantizer, q, weights)
        tokens.append(codes)
        if q + 1 < len(scales):
            latent = quantizer.next_input(q, z_hat)
        if edit is not None and edit.keep_latent is not None and q + 1 == len(scales):
            z_hat = torch.where(edit.keep_latent[:, None], quantizer.tokens_to_zhat(edit.tokens), z_hat)
        if on_scale is not None:
            on_scale(q + 1, len(scales), z_hat)
    return tokens, z_hat
