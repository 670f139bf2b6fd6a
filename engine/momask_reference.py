"""MoMask's own generation, timed from a checkout of its released code (EricGuo5513/momask-codes).

The bench compares the engine with MoMask on the same machine in the same run. The checkout is
the user's: its modules are imported from that folder at run time, never copied here. Sizes are
those of MoMask's released HumanML3D models (rvq_nq6_dc512_nc512_noshare_qdp0.2,
t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns, tres_nlayer8_ld384_ff1024_rvq6ns_cdp0.2_sw), with
random weights: the work does not depend on their values. The workload is the engine's: 196
frames, MoMask's 10 mask-transformer iterations with guidance 4, then its residual transformer
(5 layers, guidance 5) and the RVQ decoder, as its gen_t2m.py runs them. Joints come from the
engine's own recovery (the same 263-feature layout): MoMask's recover_from_ric needs numpy < 1.24.

MoMask reads one CLIP feature per prompt through its own `encode_text`. Model-only timing feeds
fixed features; end-to-end timing runs the caller's `encode` there instead (the bench passes the
same full-size CLIP ViT-B/32 text tower the engine's official preset is timed with), so MoMask
pays for the text the way its code does: once per transformer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

TOKENS = 49  # 196 frames / 4
FRAMES = 4 * TOKENS
CLIP_DIM = 512
# MoMask's released HumanML3D settings (README, options/*.py and the checkpoint names).
CODEBOOK, CODE_DIM, QUANTIZERS = 512, 512, 6
LAYERS, HEADS, LATENT, FF = 8, 6, 384, 1024
TIME_STEPS, COND_SCALE, RES_COND_SCALE, TOPK = 10, 4, 5, 0.9
MODULES = ("models/mask_transformer/transformer.py", "models/vq/model.py")

Encode = Callable[[list[str]], Tensor]  # prompts -> (B, 512) CLIP features


@dataclass
class MomaskModels:
    mask: torch.nn.Module  # MaskTransformer
    residual: torch.nn.Module  # ResidualTransformer
    vq: torch.nn.Module  # RVQVAE

    @property
    def parameters(self) -> int:
        return sum(p.numel() for m in (self.mask, self.residual, self.vq) for p in m.parameters())


def check_checkout(directory: Path) -> Path:
    """The checkout's folder, refused with what is missing when it is not momask-codes."""
    directory = Path(directory).expanduser().resolve()
    missing = [name for name in MODULES if not (directory / name).is_file()]
    if missing:
        raise ValueError(f"{directory} is not a checkout of EricGuo5513/momask-codes: {', '.join(missing)} missing")
    return directory


def load(directory: Path, device: torch.device) -> MomaskModels:
    """MoMask's three networks at official size, random weights, built by its own classes."""
    directory = check_checkout(directory)
    sys.path.insert(0, str(directory))
    if (
        "clip" not in sys.modules and importlib.util.find_spec("clip") is None
    ):  # imported at the top of its transformer module, used only by encode_text
        sys.modules["clip"] = types.ModuleType("clip")
    try:
        from models.mask_transformer.transformer import (
            MaskTransformer,
            ResidualTransformer,
        )
        from models.vq.model import RVQVAE
    except ModuleNotFoundError as error:
        raise ValueError(
            f"MoMask's code imports {error.name}, which this environment lacks: pip install {error.name}"
        ) from None
    with contextlib.redirect_stdout(io.StringIO()):  # its constructors print their sizes
        opt = Namespace(
            num_tokens=CODEBOOK,
            num_quantizers=QUANTIZERS,
            device=device,
            mu=0.99,
            shared_codebook=False,
            quantize_dropout_prob=0.2,
        )
        shared = {
            "code_dim": CODE_DIM,
            "cond_mode": "text",
            "latent_dim": LATENT,
            "ff_size": FF,
            "num_layers": LAYERS,
            "num_heads": HEADS,
            "clip_dim": CLIP_DIM,
            "opt": opt,
        }
        mask = _with_given_text(MaskTransformer)(dropout=0.2, cond_drop_prob=0.1, **shared)
        residual = _with_given_text(ResidualTransformer)(
            dropout=0.2, cond_drop_prob=0.2, shared_codebook=False, share_weight=True, **shared
        )
        vq = RVQVAE(opt, 263, CODEBOOK, CODE_DIM, CODE_DIM, 2, 2, 512, 3, 3, "relu", None)
    return MomaskModels(*(m.to(device).eval() for m in (mask, residual, vq)))


def _with_given_text(cls: type) -> type:
    """MoMask's class with its CLIP replaced by the caller's text features (`text_source`)."""

    class GivenText(cls):
        text_source: Encode | Tensor | None = None

        def load_and_freeze_clip(self, clip_version):
            return None

        def encode_text(self, raw_text):
            source = self.text_source
            return source(list(raw_text)) if callable(source) else source

    GivenText.__name__ = cls.__name__
    return GivenText


@torch.no_grad()
def generate(models: MomaskModels, prompts: list[str], text: Encode | Tensor) -> Tensor:
    """gen_t2m.py's generation for the prompts: (B, 196, 263) normalised features.
    `text`: fixed (B, 512) features, or an encoder of the prompts."""
    device = next(models.mask.parameters()).device
    models.mask.text_source = models.residual.text_source = text
    token_lens = torch.full((len(prompts),), TOKENS, dtype=torch.long, device=device)
    ids = models.mask.generate(
        prompts,
        token_lens,
        timesteps=TIME_STEPS,
        cond_scale=COND_SCALE,
        temperature=1.0,
        topk_filter_thres=TOPK,
        gsample=False,
    )
    ids = models.residual.generate(ids, prompts, token_lens, temperature=1, cond_scale=RES_COND_SCALE)
    return models.vq.forward_decoder(ids)
