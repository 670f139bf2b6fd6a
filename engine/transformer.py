"""The scale-autoregressive (SAR) transformer of MoSa, in one file.

It predicts the tokenizer's 10 token maps coarse to fine, one step per scale, every token of a
scale in parallel: p(x_1..x_Q | text) = prod_q p(x_q | x_<q, text). Step 1 reads learned start
tokens; step q+1 reads the tokenizer's accumulated latent z_hat downsampled to scale q+1.

Attribute names are those of the authors' release, so that the `official` preset's state_dict
has exactly the released keys (mosa-spec.md section 5) and their checkpoints load unchanged.
Which of the two 512 -> 384 projections the release calls `input_process` and which `input_emb`
is not documented; here `input_process` embeds the tokenizer's latents (as in MoMask, whose
`input_process` embeds motion tokens) and `input_emb` embeds the text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from engine.tokenizer import FRAMES_PER_LATENT, TokenizerConfig

OFFICIAL_SCALES = TokenizerConfig.official().scales
OFFICIAL_CODEBOOK_SIZES = tuple(TokenizerConfig.official().codebook_sizes())


@dataclass
class TransformerConfig:
    d_model: int = 384
    n_layers: int = 8
    n_heads: int = 6
    ff_size: int = 768
    dropout: float = 0.2
    text_dim: int = 512  # CLIP ViT-B/32 token features
    code_dim: int = 512  # the tokenizer's latent width
    scales: tuple[int, ...] = OFFICIAL_SCALES
    codebook_sizes: tuple[int, ...] = OFFICIAL_CODEBOOK_SIZES
    cond_drop_prob: float = 0.1  # text zeroed for this share of training samples (for guidance)
    token_corruption: float = 0.5  # teacher-forced input tokens replaced by random codes
    rope_base: float = 100.0
    rope_span: float = 64.0  # every scale's tokens spread over positions [0, rope_span]
    norm_eps: float = 1e-5  # the release's RMSNorm; the demo model was trained with 1e-6 and keeps it in its config

    def __post_init__(self) -> None:
        self.scales = tuple(int(s) for s in self.scales)
        self.codebook_sizes = tuple(int(v) for v in self.codebook_sizes)
        if len(self.scales) != len(self.codebook_sizes):
            raise ValueError(
                f"{len(self.scales)} scales but {len(self.codebook_sizes)} codebook sizes; expected one size per scale"
            )
        if list(self.scales) != sorted(set(self.scales)):
            raise ValueError(f"scales {self.scales} must grow strictly from coarse to fine")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"d_model {self.d_model} must split into {self.n_heads} heads of an even width (rotary pairs)"
            )

    @property
    def length_tokens(self) -> int:
        """Latent positions at full resolution (49): the length embedding has one row per length."""
        return self.scales[-1]

    @property
    def sequence_length(self) -> int:
        return sum(self.scales)

    @classmethod
    def official(cls, tokenizer=None) -> "TransformerConfig":
        """The released HumanML3D / Motion-X model (about 18.9 M parameters without CLIP)."""
        return cls(**_tokenizer_fields(tokenizer))

    @classmethod
    def demo(cls, tokenizer=None) -> "TransformerConfig":
        """The small model trained here, on all-MiniLM-L6-v2 text features (384-d)."""
        return cls(
            d_model=256, n_layers=4, n_heads=4, ff_size=512, dropout=0.1, text_dim=384, **_tokenizer_fields(tokenizer)
        )

    def to_dict(self) -> dict:
        config = asdict(self)
        config["scales"], config["codebook_sizes"] = list(self.scales), list(self.codebook_sizes)
        return config

    @classmethod
    def from_dict(cls, config: dict) -> "TransformerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown transformer config keys {unknown}; expected some of {sorted(known)}")
        return cls(**config)


def _tokenizer_fields(tokenizer) -> dict:
    """Scales, codebook sizes and latent width from a TokenizerConfig, so the two always agree."""
    if tokenizer is None:
        return {}
    return {
        "scales": tuple(tokenizer.scales),
        "codebook_sizes": tuple(tokenizer.codebook_sizes()),
        "code_dim": tokenizer.code_dim,
    }


# --- scale layout -------------------------------------------------------------------------------
def scale_levels(scales: tuple[int, ...]) -> Tensor:
    """The scale index of every token of the flattened sequence: (sum(scales),) int64."""
    return torch.cat([torch.full((size,), level, dtype=torch.long) for level, size in enumerate(scales)])


def block_causal_mask(scales: tuple[int, ...]) -> Tensor:
    """The release's mask (1, 1, L, L): 1 where a token may look (its own and coarser scales), 0 elsewhere."""
    levels = scale_levels(scales)
    return (levels[None, :] <= levels[:, None]).float()[None, None]


def upgraded_state(state_dict: dict, scales: tuple[int, ...]) -> dict:
    """A transformer state_dict with its attn_mask in the release's 1/0 form (see loaded_attention_mask)."""
    upgraded = dict(state_dict)
    if isinstance(upgraded.get("attn_mask"), Tensor):
        upgraded["attn_mask"] = loaded_attention_mask(upgraded["attn_mask"], scales)
    return upgraded


def loaded_attention_mask(mask: Tensor, scales: tuple[int, ...]) -> Tensor:
    """A checkpoint's attn_mask in the release's 1/0 form, whatever form it was saved in.

    Checkpoints this engine wrote before it followed the release hold the additive form (0 where
    a token may look, -inf elsewhere). Either form must describe the block-causal mask of the
    scales: anything else is refused, since forward and step would then disagree.
    """
    expected = block_causal_mask(scales)
    if mask.shape != expected.shape:
        raise ValueError(
            f"attn_mask has shape {tuple(mask.shape)}; expected {tuple(expected.shape)} for scales {scales}"
        )
    release_form = mask.float()
    if torch.isinf(release_form).any():
        release_form = (release_form == 0).float()
    if not torch.equal(release_form, expected):
        raise ValueError(
            f"attn_mask is not the block-causal mask of scales {scales} (1 where a token may look, 0 elsewhere)"
        )
    return release_form


def scale_rotary_frequencies(scales: tuple[int, ...], head_dim: int, base: float, span: float) -> Tensor:
    """Scale-aware RoPE: token i of a p-token scale sits at i/(p-1)*span, so all scales span the
    same range and a token lines up with the tokens covering the same time at other scales."""
    positions = torch.cat([torch.linspace(0.0, span, size) if size > 1 else torch.zeros(1) for size in scales])
    frequencies = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = positions.double()[:, None] * frequencies[None, :]
    return torch.polar(torch.ones_like(angles), angles).to(torch.complex64)  # (L, head_dim/2)


def apply_rotary(x: Tensor, freqs_cis: Tensor) -> Tensor:
    """Rotate adjacent channel pairs of x (B, H, L, D) by the complex frequencies (L, D/2)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * freqs_cis).flatten(-2).type_as(x)


# --- blocks -------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.scale


@dataclass
class ScaleCache:
    """The self-attention keys and values an inference step keeps for the next scales.

    They grow by one scale per step, written into buffers as long as the whole sequence
    (`capacity` tokens) so that a step does not copy the earlier scales' keys again.
    """

    capacity: int
    keys: Tensor | None = None  # (B, H, capacity, head_dim)
    values: Tensor | None = None
    length: int = 0  # tokens held so far

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add one scale's keys and values (B, H, s_q, head_dim); all held so far, as views."""
        if self.keys is None:
            shape = (*keys.shape[:2], self.capacity, keys.shape[3])
            self.keys, self.values = keys.new_empty(shape), values.new_empty(shape)
        end = self.length + keys.shape[2]
        if end > self.capacity or keys.shape[:2] != self.keys.shape[:2]:
            raise ValueError(
                f"{tuple(keys.shape)} keys do not fit a cache of {tuple(self.keys.shape)} holding {self.length}"
            )
        self.keys[:, :, self.length : end] = keys
        self.values[:, :, self.length : end] = values
        first, self.length = self.length == 0, end
        if first:  # as computed: matmul reads it with another kernel than a view of the buffer (the release's rounding)
            return keys, values
        return self.keys[:, :, :end], self.values[:, :, :end]


@dataclass
class TextCache:
    """What cross-attention needs of the text, computed at the first scale and read at every step.

    A row whose text positions are all one vector (guidance's unconditional half: zeroed text plus
    the length embedding) scores every position alike, so each of its queries gets that vector's
    value, projected: `constant` holds it and those rows skip the attention. Only the batch's
    trailing such rows skip it (guidance puts its unconditional half last); any others attend.
    """

    keys: Tensor | None = None  # (attending rows, H, text tokens, head_dim)
    values: Tensor | None = None
    constant: Tensor | None = None  # (B - attending rows, 1, d)

    @property
    def attending(self) -> int:
        return self.keys.shape[0]


@dataclass
class BlockCache:
    capacity: int
    text: TextCache = field(default_factory=TextCache)
    scales: ScaleCache = field(init=False)

    def __post_init__(self) -> None:
        self.scales = ScaleCache(self.capacity)


def trailing_constant_rows(source: Tensor) -> int:
    """How many of the batch's last rows of source (B, L, d) hold one vector at every position."""
    constant = (source == source[:, :1]).flatten(1).all(1)
    return int(constant.flip(0).cumprod(0).sum())


class Attention(nn.Module):
    """Multi-head attention of x over a source (itself for self-attention, the text for cross)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(config.dropout)
        self.proj_drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        source: Tensor | None,
        freqs_cis: Tensor | None = None,
        mask: Tensor | None = None,
        cache: ScaleCache | TextCache | None = None,
    ) -> Tensor:
        if isinstance(cache, TextCache):
            return self._read_text(x, source, cache)
        q, k, v = self._heads(self.query(x)), self._heads(self.key(source)), self._heads(self.value(source))
        if freqs_cis is not None:
            q, k = apply_rotary(q, freqs_cis), apply_rotary(k, freqs_cis)
        if cache is not None:  # earlier scales' keys and values, then this scale's
            k, v = cache.append(k, v)
        return self._attend(q, k, v, mask)

    def _read_text(self, x: Tensor, source: Tensor | None, cache: TextCache) -> Tensor:
        """Cross-attention at inference; source (the normed text) is read at the first scale only."""
        if cache.keys is None:
            attending = source.shape[0] - trailing_constant_rows(source)
            text = source[:attending]
            k, v = self._heads(self.key(text)), self._heads(self.value(text))
            # Kept in the layout the products read (matmul would copy these head views at every
            # scale); the same values in the same layout, so the same rounding.
            cache.keys, cache.values = k.transpose(-2, -1).contiguous().transpose(-2, -1), v.contiguous()
            cache.constant = self.proj(self.value(source[attending:, :1]))
        attending = cache.attending
        out = self._attend(self._heads(self.query(x[:attending])), cache.keys, cache.values, None)
        if attending == x.shape[0]:
            return out
        return torch.cat([out, cache.constant.expand(-1, x.shape[1], -1)])

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        # Written out as the release computes it (not a fused kernel, which rounds differently: the
        # guided logits multiply any difference by up to 9, the smooth mode's last tau by ~1300).
        # The scale goes on q, 3.7 times smaller than the last scale's scores; for a power-of-four
        # head width (64 in both presets) that is exact, so the scores are the release's to the bit.
        scores = (q * (1.0 / math.sqrt(k.size(-1)))) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = self.attn_drop(scores.softmax(dim=-1)) @ v
        return self.proj_drop(self.proj(out.transpose(1, 2).flatten(2)))

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)  # (B, H, L, head_dim)


class SwiGLU(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.c_fc1 = nn.Linear(config.d_model, config.ff_size, bias=False)
        self.c_fc2 = nn.Linear(config.d_model, config.ff_size, bias=False)
        self.c_proj = nn.Linear(config.ff_size, config.d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.silu(self.c_fc1(x)) * self.c_fc2(x))


class Block(nn.Module):
    """Cross-attention to the text, block-causal self-attention with scale RoPE, SwiGLU."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln0 = RMSNorm(config.d_model, config.norm_eps)
        self.ln0_t = RMSNorm(config.d_model, config.norm_eps)
        self.attn0 = Attention(config)
        self.ln1 = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.ln2 = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = nn.Sequential(SwiGLU(config), nn.Dropout(config.dropout))

    def forward(
        self, x: Tensor, text: Tensor, freqs_cis: Tensor, mask: Tensor | None = None, cache: BlockCache | None = None
    ) -> Tensor:
        text_cached = cache is not None and cache.text.keys is not None  # its keys and values: no norm needed
        x = x + self.attn0(
            self.ln0(x), None if text_cached else self.ln0_t(text), cache=None if cache is None else cache.text
        )
        h = self.ln1(x)
        x = x + self.attn(h, h, freqs_cis, mask, None if cache is None else cache.scales)
        return x + self.mlp(self.ln2(x))


# --- the model ----------------------------------------------------------------------------------
class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.input_process = nn.Linear(config.code_dim, d)  # tokenizer latent -> next scale's input
        self.input_emb = nn.Linear(config.text_dim, d)  # text token features
        self.pos_start = nn.Parameter(torch.empty(1, config.scales[0], d))
        self.len_embed = nn.Embedding(config.length_tokens, d)
        self.lvl_embed = nn.Embedding(len(config.scales), d)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.heads = nn.ModuleList(nn.Linear(d, size) for size in config.codebook_sizes)

        head_dim = d // config.n_heads
        self.register_buffer(
            "freqs_cis", scale_rotary_frequencies(config.scales, head_dim, config.rope_base, config.rope_span)
        )
        self.register_buffer("lvl_1L", scale_levels(config.scales)[None])
        self.register_buffer("attn_mask", block_causal_mask(config.scales))
        self.scale_starts = [0]
        for size in config.scales:
            self.scale_starts.append(self.scale_starts[-1] + size)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.pos_start, std=0.02)

    # -- inputs --
    def length_index(self, lengths: Tensor) -> Tensor:
        """Motion length in frames -> length-embedding row (m_len // 4 - 1), checked."""
        tokens = lengths // FRAMES_PER_LATENT
        if (lengths % FRAMES_PER_LATENT).any() or (tokens < 1).any() or (tokens > self.config.length_tokens).any():
            raise ValueError(
                f"motion lengths {lengths.tolist()} must be multiples of {FRAMES_PER_LATENT} "
                f"in {FRAMES_PER_LATENT}..{FRAMES_PER_LATENT * self.config.length_tokens} frames"
            )
        return tokens - 1

    def text_context(self, text: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Text features -> the cross-attention source (B, Lt, d), and the length embedding (B, d)."""
        if text.dim() != 3 or text.shape[-1] != self.config.text_dim:
            raise ValueError(
                f"text features have shape {tuple(text.shape)}; expected (batch, tokens, {self.config.text_dim})"
            )
        length_embedding = self.len_embed(self.length_index(lengths))
        return self.input_emb(text) + length_embedding[:, None], length_embedding

    def start_tokens(self, length_embedding: Tensor) -> Tensor:
        """The first scale's input: learned start tokens plus the length embedding."""
        return self.pos_start.expand(length_embedding.shape[0], -1, -1) + length_embedding[:, None]

    # -- full pass (training, and the reference for the cached one) --
    def forward(self, text: Tensor, lengths: Tensor, next_inputs: Tensor | None = None) -> list[Tensor]:
        """Teacher-forced block-causal pass. next_inputs (B, n, code_dim) holds the latents of
        scales 2..k (n = s_2 + .. + s_k; None for the first scale only); returns the logits
        [(B, s_q, V_q)] of scales 1..k."""
        context, length_embedding = self.text_context(text, lengths)
        x = self.start_tokens(length_embedding)
        if next_inputs is not None:
            x = torch.cat([x, self.input_process(next_inputs)], dim=1)
        total = x.shape[1]
        if total not in self.scale_starts:
            first = self.config.scales[0]
            raise ValueError(
                f"next_inputs cover {total - first} tokens; expected whole scales, one of {[s - first for s in self.scale_starts[2:]]}"
            )
        x = x + self.lvl_embed(self.lvl_1L[:, :total])
        visible = self.attn_mask[:, :, :total, :total] > 0  # True where a token may look, as the release reads it
        for block in self.blocks:
            x = block(x, context, self.freqs_cis[:total], visible)
        levels = self.scale_starts.index(total)
        return [self.heads[q](x[:, self.scale_starts[q] : self.scale_starts[q + 1]]) for q in range(levels)]

    # -- one scale at a time with the key/value cache (inference) --
    def new_cache(self) -> list[BlockCache]:
        return [BlockCache(self.config.sequence_length) for _ in self.blocks]

    def step(
        self, level: int, context: Tensor, length_embedding: Tensor, latent: Tensor | None, cache: list[BlockCache]
    ) -> Tensor:
        """Logits (B, s_q, V_q) of scale `level`; the earlier scales reach it through `cache`.
        latent: the accumulated z_hat downsampled to this scale (B, s_q, code_dim), None at 0."""
        span = slice(self.scale_starts[level], self.scale_starts[level + 1])
        x = self.start_tokens(length_embedding) if level == 0 else self.input_process(latent)
        x = x + self.lvl_embed(self.lvl_1L[:, span])
        for block, block_cache in zip(self.blocks, cache):
            x = block(x, context, self.freqs_cis[span], None, block_cache)
        return self.heads[level](x)

    # -- training --
    def training_loss(
        self, text: Tensor, lengths: Tensor, tokens: list[Tensor], quantizer
    ) -> tuple[Tensor, dict[str, float]]:
        """mean(CE of scales 1..Q-1) + CE of scale Q, with corrupted inputs and dropped text."""
        config = self.config
        dropped = torch.rand(text.shape[0], device=text.device) < config.cond_drop_prob
        text = text.masked_fill(dropped[:, None, None], 0.0)
        corrupted = []
        for codes, size in zip(tokens, config.codebook_sizes):
            random_codes = torch.randint_like(codes, size)
            corrupted.append(
                torch.where(torch.rand(codes.shape, device=codes.device) < config.token_corruption, random_codes, codes)
            )
        with torch.no_grad():
            next_inputs = quantizer.teacher_inputs(corrupted)
        logits = self(text, lengths, next_inputs)
        losses = [
            F.cross_entropy(scale_logits.flatten(0, 1), codes.flatten()) for scale_logits, codes in zip(logits, tokens)
        ]
        loss = torch.stack(losses[:-1]).mean() + losses[-1]
        stats = {"loss": loss.item(), "ce_first": losses[0].item(), "ce_last": losses[-1].item()}
        stats["accuracy_last"] = (logits[-1].argmax(-1) == tokens[-1]).float().mean().item()
        return loss, stats


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.trunc_normal_(module.weight, std=0.02)
