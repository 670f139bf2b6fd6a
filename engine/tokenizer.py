"""The CAQ-VAE motion tokenizer of MoSa, in one file.

A 1-D convolutional encoder (GroupNorm + SiLU residual blocks, single-head attention at the
latent rate) turns 196 normalised feature frames into 49 latents; a multi-scale residual
quantizer (MTPS) turns those into 10 token maps of 3..49 tokens; a mirrored decoder turns the
accumulated latent z_hat back into 196 frames (mosa-spec.md section 2).

Attribute names are those of the authors' release, so that the `official` preset's state_dict
has exactly the released keys (mosa-spec.md section 5) and their checkpoints load unchanged.

Lengths: the model always works on 196 frames (49 latents), because the scales are defined on 49
latents. A shorter motion (a multiple of 4 frames) is zero-padded in normalised space, as in the
authors' data pipeline; the caller crops the decoded frames back to its length, and training
passes a frame_mask so that padded frames carry no reconstruction loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from retarget.canonical import (
    FEATURE_SIZE,
    FRAMES_PER_LATENT,
    MAX_FRAMES,
)  # FRAMES_PER_LATENT: two stride-2 downsamples

JOINT_FEATURES = slice(4, 67)  # root-relative joint positions: weighted extra in the loss
# The convolutions into and out of the code space (encoder.conv_out, decoder.conv_in) are 3 wide in
# the release: encoder.conv_out.weight is (512, 256, 3), 34,996,127 parameters in all.
CODE_SPACE_KERNEL = 3
CODE_SPACE_WEIGHTS = ("encoder.conv_out.weight", "decoder.conv_in.weight")


def usable_length(frames: int, max_frames: int) -> int:
    """The longest multiple of 4 that fits in the motion and in max_frames."""
    return min(frames, max_frames) // FRAMES_PER_LATENT * FRAMES_PER_LATENT


@dataclass
class TokenizerConfig:
    feature_dim: int = FEATURE_SIZE
    max_frames: int = MAX_FRAMES
    width: int = 256
    width_mul: tuple[int, ...] = (1, 2, 1)
    depth: int = 2  # residual blocks per encoder level (the decoder has depth + 1)
    dropout: float = 0.0
    code_dim: int = 512
    scales: tuple[int, ...] = (3, 6, 10, 15, 20, 25, 30, 36, 42, 49)
    nb_code_st: int = 256  # codebook size at the coarsest scale ...
    nb_code_ed: int = 768  # ... growing linearly to the finest
    phi_k: int = 3  # kernel of the refinement convolutions
    phi_depth: int = 2  # refinement conv + ReLU layers per scale
    mu: float = 0.99  # EMA decay of the codebooks
    slot_group: int = 10  # rows of virtual_slot = max_frames * slot_group (kept for the release's keys)
    commit_beta: float = 1.0
    commit_weight: float = 0.02
    joint_weight: float = 0.5

    def __post_init__(self) -> None:
        self.width_mul = tuple(int(m) for m in self.width_mul)
        self.scales = tuple(int(s) for s in self.scales)
        if self.max_frames % FRAMES_PER_LATENT:
            raise ValueError(f"max_frames {self.max_frames} must be a multiple of {FRAMES_PER_LATENT}")
        if len(self.width_mul) != 3:
            raise ValueError(f"width_mul {self.width_mul} must have 3 levels (two of them downsample by 2)")
        if list(self.scales) != sorted(set(self.scales)) or self.scales[-1] != self.latent_length:
            raise ValueError(
                f"scales {self.scales} must grow strictly and end at the latent length {self.latent_length}"
            )
        if self.width % 4 or self.code_dim % 4:
            raise ValueError(
                f"width {self.width} and code_dim {self.code_dim} must be multiples of 4 (GroupNorm with 4 groups)"
            )

    @property
    def latent_length(self) -> int:
        return self.max_frames // FRAMES_PER_LATENT

    def codebook_sizes(self) -> list[int]:
        """Sizes growing linearly from nb_code_st to nb_code_ed (official: 256, 313, ..., 768)."""
        steps = len(self.scales) - 1
        return [
            round(self.nb_code_st + (self.nb_code_ed - self.nb_code_st) * q / steps) for q in range(len(self.scales))
        ]

    @classmethod
    def official(cls) -> "TokenizerConfig":
        """The released HumanML3D / Motion-X tokenizer (34,996,127 parameters; the paper rounds to 34.5 M)."""
        return cls()

    @classmethod
    def demo(cls) -> "TokenizerConfig":
        """A small tokenizer that trains on a few CPU cores; its weights take a few MB."""
        return cls(width=64, code_dim=64, nb_code_st=64, nb_code_ed=256, slot_group=1)

    def to_dict(self) -> dict:
        config = asdict(self)
        config["width_mul"], config["scales"] = list(self.width_mul), list(self.scales)
        return config

    @classmethod
    def from_dict(cls, config: dict) -> "TokenizerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown tokenizer config keys {unknown}; expected some of {sorted(known)}")
        return cls(**config)


# --- encoder and decoder building blocks ------------------------------------------------------
def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(4, channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(channels_in)
        self.conv1 = nn.Conv1d(channels_in, channels_out, 3, padding=1)
        self.norm2 = group_norm(channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(channels_out, channels_out, 3, padding=1)
        if channels_in != channels_out:
            self.nin_shortcut = nn.Conv1d(channels_in, channels_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return shortcut + h


class AttnBlock(nn.Module):
    """Single-head self-attention over time, with 1x1 convolutions as projections."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(self.norm(x)).transpose(1, 2).chunk(3, dim=-1)  # each (B, T, C)
        h = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(C)) v
        return x + self.proj_out(h.transpose(1, 2))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1)))  # pad one frame on the right: 196 -> 98 -> 49


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: residual blocks, each followed by attention at the latent rate."""

    def __init__(self, channels_in: int, channels_out: int, n_blocks: int, attention: bool, dropout: float) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            ResBlock(channels_in if i == 0 else channels_out, channels_out, dropout) for i in range(n_blocks)
        )
        self.attn = nn.ModuleList(AttnBlock(channels_out) for _ in range(n_blocks if attention else 0))

    def blocks(self, h: Tensor) -> Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if self.attn:
                h = self.attn[i](h)
        return h


class Middle(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResBlock(channels, channels, dropout)

    def forward(self, h: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    """(B, 263, 196) features -> (B, code_dim, 49) latents."""

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        widths = [c.width * m for m in c.width_mul]
        last = len(widths) - 1
        self.conv_in = nn.Conv1d(c.feature_dim, c.width, 3, padding=1)
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            level = Level(c.width if i == 0 else widths[i - 1], width, c.depth, attention=i == last, dropout=c.dropout)
            if i != last:
                level.downsample = Downsample(width)
            self.down.append(level)
        self.mid = Middle(widths[-1], c.dropout)
        self.norm_out = group_norm(widths[-1])
        self.conv_out = nn.Conv1d(
            widths[-1], c.code_dim, CODE_SPACE_KERNEL, padding=CODE_SPACE_KERNEL // 2
        )  # as released

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level.blocks(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """(B, code_dim, 49) latents -> (B, 263, 196) features; levels run from up.2 down to up.0."""

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        widths = [c.width * m for m in c.width_mul]
        last = len(widths) - 1
        self.conv_in = nn.Conv1d(
            c.code_dim, widths[-1], CODE_SPACE_KERNEL, padding=CODE_SPACE_KERNEL // 2
        )  # as conv_out
        self.mid = Middle(widths[-1], c.dropout)
        self.up = nn.ModuleList()
        for i, width in enumerate(widths):
            channels_in = widths[-1] if i == last else widths[i + 1]
            level = Level(channels_in, width, c.depth + 1, attention=i == last, dropout=c.dropout)
            level.upsample = Upsample(width)  # the release keeps one on up.0 too; it is never run
            self.up.append(level)
        self.norm_out = group_norm(widths[0])
        self.conv_out = nn.Conv1d(widths[0], c.feature_dim, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = self.up[i].blocks(h)
            if i != 0:
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# --- multi-scale residual quantizer -------------------------------------------------------------
class Codebook(nn.Module):
    """One scale's codebook: EMA-updated, initialised from the first batch, dead codes reset."""

    def __init__(self, size: int, dim: int, mu: float) -> None:
        super().__init__()
        self.mu = mu
        self.register_buffer("initted", torch.zeros(1))
        self.register_buffer("code_sum", torch.zeros(size, dim))
        self.register_buffer("codebook", torch.zeros(size, dim))
        self.register_buffer("code_count", torch.zeros(size))

    def lookup(self, r: Tensor) -> Tensor:
        """Nearest code by cosine similarity: r (N, D) -> indices (N,)."""
        return (F.normalize(r, dim=-1) @ F.normalize(self.codebook, dim=-1).T).argmax(dim=-1)

    def _first_vectors(self, vectors: Tensor) -> Tensor:
        """The first rows of `vectors`, as many as there are codes (tiled with a little noise if
        short), as the release takes them: for the first codebook and to re-seed dead codes."""
        size = self.codebook.shape[0]
        if vectors.shape[0] < size:
            repeats = -(-size // vectors.shape[0])
            std = 0.01 / vectors.shape[1] ** 0.5
            tiled = vectors.repeat(repeats, 1)
            vectors = tiled + torch.randn_like(tiled) * std
        return vectors[:size]

    @torch.no_grad()
    def init_from(self, vectors: Tensor) -> None:
        self.codebook.copy_(self._first_vectors(vectors))
        self.code_sum.copy_(self.codebook)
        self.code_count.fill_(1.0)
        self.initted.fill_(1.0)

    @torch.no_grad()
    def ema_update(self, vectors: Tensor, codes: Tensor) -> None:
        """Move each code towards the mean of the vectors assigned to it; re-seed dead codes."""
        onehot = F.one_hot(codes, self.codebook.shape[0]).type_as(vectors)  # (N, V)
        self.code_sum.mul_(self.mu).add_(onehot.T @ vectors, alpha=1 - self.mu)
        self.code_count.mul_(self.mu).add_(onehot.sum(0), alpha=1 - self.mu)
        alive = (self.code_count >= 1.0).unsqueeze(1).type_as(vectors)
        means = self.code_sum / self.code_count.clamp(min=1e-6).unsqueeze(1)
        self.codebook.copy_(alive * means + (1 - alive) * self._first_vectors(vectors))


class Refinement(nn.Module):
    """phi_q: phi_depth (Conv1d k + ReLU) layers on the upsampled codes of one scale."""

    def __init__(self, dim: int, kernel: int, depth: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(
            *(nn.Sequential(nn.Conv1d(dim, dim, kernel, padding=kernel // 2), nn.ReLU()) for _ in range(depth))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.phi(x)


class Quantizer(nn.Module):
    """MTPS residual quantizer over the scales; scale indices q are 0-based (0..9).

    For each scale: area-downsample the residual, look codes up by cosine similarity, dequantise
    with the raw codebook, interpolate linearly back to full length, refine with phi_q, then
    z_hat += phi and residual -= phi.
    """

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        self.scales = c.scales
        self.latent_length = c.latent_length
        self.commit_beta = c.commit_beta
        self.layers = nn.ModuleList(Codebook(size, c.code_dim, c.mu) for size in c.codebook_sizes())
        self.phis = nn.ModuleList(Refinement(c.code_dim, c.phi_k, c.phi_depth) for _ in c.scales)

    def scale_contribution(self, q: int, codes: Tensor) -> Tensor:
        """phi_q(interpolate(codebook_q[codes], 49)): codes (B, s_q) -> (B, code_dim, 49)."""
        vectors = self.layers[q].codebook[codes].transpose(1, 2)  # (B, D, s_q)
        return self.phis[q](F.interpolate(vectors, size=self.latent_length, mode="linear"))

    def add_scale(self, q: int, z_hat: Tensor, codes: Tensor) -> Tensor:
        return z_hat + self.scale_contribution(q, codes)

    def next_input(self, q: int, z_hat: Tensor) -> Tensor:
        """The transformer's input for scale q+1: z_hat area-downsampled, (B, s_{q+1}, code_dim)."""
        return F.adaptive_avg_pool1d(z_hat, self.scales[q + 1]).transpose(1, 2)

    def tokens_to_zhat(self, tokens: list[Tensor]) -> Tensor:
        """Accumulated latent of the first len(tokens) scales: (B, code_dim, 49)."""
        z_hat = self.layers[0].codebook.new_zeros(
            tokens[0].shape[0], self.layers[0].codebook.shape[1], self.latent_length
        )
        for q, codes in enumerate(tokens):
            z_hat = self.add_scale(q, z_hat, codes)
        return z_hat

    def teacher_inputs(self, tokens: list[Tensor]) -> Tensor:
        """Teacher-forced inputs of scales 2..10 from the given codes: (B, sum(s_2..s_10), code_dim)."""
        z_hat = self.tokens_to_zhat(tokens[:1])
        inputs = [self.next_input(0, z_hat)]
        for q in range(1, len(self.scales) - 1):
            z_hat = self.add_scale(q, z_hat, tokens[q])
            inputs.append(self.next_input(q, z_hat))
        return torch.cat(inputs, dim=1)

    def usage(self) -> list[float]:
        """Fraction of codes per scale whose EMA count is still at least 1 (live codes)."""
        return [(layer.code_count >= 1.0).float().mean().item() for layer in self.layers]

    def forward(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """z (B, D, 49) -> (z_hat, codes per scale, commitment loss averaged over scales).

        In training mode codebooks are initialised on the first batch and EMA-updated with the
        full-resolution residual, each of its 49 vectors assigned its own nearest code (as the
        release does; it observed a higher perplexity than with the downsampled lookup).
        """
        B, D, _ = z.shape
        residual = z.detach()
        z_hat = torch.zeros_like(z)
        codes_per_scale, commit = [], z.new_zeros(())
        for q, size in enumerate(self.scales):
            layer = self.layers[q]
            full_vectors = residual.transpose(1, 2).reshape(-1, D)
            if self.training and not layer.initted.item():
                layer.init_from(full_vectors)
            pooled = F.adaptive_avg_pool1d(residual, size).transpose(1, 2)  # (B, s_q, D)
            codes = layer.lookup(pooled.reshape(-1, D)).view(B, size)
            contribution = self.scale_contribution(q, codes)
            if self.training:
                layer.ema_update(full_vectors, layer.lookup(full_vectors))
            z_hat = z_hat + contribution
            residual = residual - contribution.detach()
            commit = commit + self.commit_beta * F.mse_loss(z_hat.detach(), z) + F.mse_loss(z_hat, z.detach())
            codes_per_scale.append(codes)
        return z_hat, codes_per_scale, commit / len(self.scales)


# --- the tokenizer -----------------------------------------------------------------------------


def widened_code_space_kernel(weight: Tensor) -> Tensor:
    """A code-space convolution's weight, 3 wide.

    Checkpoints this engine wrote before it followed the release (the demo model's) hold 1-wide
    kernels; with padding 1, the same kernel as the middle tap of a 3-wide one between two zero
    taps gives exactly the same output, so those load unchanged in behaviour.
    """
    if weight.dim() == 3 and weight.shape[-1] == 1:
        side = CODE_SPACE_KERNEL // 2
        return F.pad(weight, (side, side))
    return weight


def upgraded_state(state_dict: dict) -> dict:
    """A tokenizer state_dict with any 1-wide code-space kernels widened (see widened_code_space_kernel)."""
    upgraded = dict(state_dict)
    for name in CODE_SPACE_WEIGHTS:
        if isinstance(upgraded.get(name), Tensor):
            upgraded[name] = widened_code_space_kernel(upgraded[name])
    return upgraded


class Tokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        # In the release but unused by the forward pass; kept so its checkpoints load strictly.
        self.virtual_slot = nn.Parameter(
            torch.zeros(config.max_frames * config.slot_group, config.feature_dim), requires_grad=False
        )
        self.register_buffer("initted", torch.zeros(1))  # set once the codebooks are initialised
        self.encoder = Encoder(config)
        self.quantizer = Quantizer(config)
        self.decoder = Decoder(config)

    def pad(self, x_norm: Tensor) -> Tensor:
        """(B, T, 263) with T a multiple of 4 up to 196 -> (B, 196, 263), zero-padded at the end."""
        c = self.config
        if x_norm.dim() != 3 or x_norm.shape[2] != c.feature_dim:
            raise ValueError(f"expected normalised features (B, T, {c.feature_dim}), got {tuple(x_norm.shape)}")
        frames = x_norm.shape[1]
        if frames % FRAMES_PER_LATENT or not 0 < frames <= c.max_frames:
            raise ValueError(
                f"motion has {frames} frames; expected a multiple of {FRAMES_PER_LATENT} from 4 to {c.max_frames}"
            )
        return F.pad(x_norm, (0, 0, 0, c.max_frames - frames))

    def encode(self, x_norm: Tensor) -> Tensor:
        return self.encoder(self.pad(x_norm).transpose(1, 2))

    def decode_latent(self, z_hat: Tensor) -> Tensor:
        """(B, code_dim, 49) -> (B, 196, 263) normalised features."""
        return self.decoder(z_hat).transpose(1, 2)

    def forward(self, x_norm: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """x_norm (B, T, 263) -> (reconstruction (B, 196, 263), codes per scale, commitment loss)."""
        z = self.encode(x_norm)
        z_hat, codes, commit = self.quantizer(z)
        if self.training:
            self.initted.fill_(1.0)
        z_straight_through = z + (z_hat - z).detach()
        return self.decode_latent(z_straight_through), codes, commit

    def training_loss(self, x_norm: Tensor, frame_mask: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """SmoothL1 reconstruction + 0.5 x on joint positions + 0.02 x commitment.

        frame_mask (B, T) marks real frames; by default all T input frames are real and the
        padding up to 196 is not.
        """
        c = self.config
        target = self.pad(x_norm)
        if frame_mask is None:
            frame_mask = torch.ones(x_norm.shape[:2], device=x_norm.device)
        if frame_mask.shape != x_norm.shape[:2]:
            raise ValueError(f"frame_mask has shape {tuple(frame_mask.shape)}; expected {tuple(x_norm.shape[:2])}")
        weights = F.pad(frame_mask.float(), (0, c.max_frames - x_norm.shape[1]))
        recon, _, commit = self(x_norm)
        per_element = F.smooth_l1_loss(recon, target, reduction="none")  # (B, 196, 263)
        frames = weights.sum().clamp(min=1.0)
        reconstruction = (per_element.mean(-1) * weights).sum() / frames
        joints = (per_element[..., JOINT_FEATURES].mean(-1) * weights).sum() / frames
        loss = reconstruction + c.joint_weight * joints + c.commit_weight * commit
        stats = {
            "loss": loss.item(),
            "reconstruction": reconstruction.item(),
            "joints": joints.item(),
            "commit": commit.item(),
        }
        stats.update({f"usage_{q}": u for q, u in enumerate(self.quantizer.usage())})
        return loss, stats

    @torch.no_grad()
    def encode_tokens(self, x_norm: Tensor) -> list[Tensor]:
        """(B, T, 263) -> 10 token maps (B, s_q), without touching the codebooks."""
        was_training = self.training
        self.eval()
        _, codes, _ = self.quantizer(self.encode(x_norm))
        self.train(was_training)
        return codes

    def decode_tokens(self, tokens: list[Tensor]) -> Tensor:
        """All 10 token maps -> (B, 196, 263) normalised features."""
        if len(tokens) != len(self.config.scales):
            raise ValueError(f"got {len(tokens)} token maps; expected {len(self.config.scales)} (one per scale)")
        return self.decode_latent(self.quantizer.tokens_to_zhat(tokens))
