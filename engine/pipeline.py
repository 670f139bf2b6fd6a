"""What the service and the CLI call: prompt (and source motion) in, canonical motions out.

A Pipeline holds one loaded model: the text encoder, the SAR transformer, the CAQ-VAE
tokenizer and the dataset's feature statistics. It checks requests, runs engine.generate's
sampling loop, decodes the latent, and turns features into canonical motion. Requests are
plain dataclasses; bad values raise ValueError saying what was expected.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import representation
from engine.generate import Cancelled, EditSource, SamplingOptions, edit_source, sample
from engine.text_encoders import TextEncoder, load_text_encoder
from engine.tokenizer import FRAMES_PER_LATENT, Tokenizer
from engine.transformer import Transformer
from engine.validation import PRECISIONS
from retarget.motion import CanonicalMotion

__all__ = ["Cancelled", "EditRequest", "GenerateRequest", "Pipeline", "Progress", "SamplingOptions"]

SEAM_FRAMES = 8  # an edit blends into the source's own decode over this many frames each side


@dataclass
class GenerateRequest:
    prompt: str
    frames: int  # a multiple of 4, at most 196 (9.8 s at 20 fps)
    seed: int | None = None  # None: a fresh random seed
    samples: int = 1  # sample i uses seed + i
    sampling: SamplingOptions = field(default_factory=SamplingOptions)


@dataclass
class EditRequest:
    prompt: str
    source_features: np.ndarray  # raw (frames - 1 or frames, 263) features of the source motion
    frame_mask: np.ndarray  # bool (frames,), True = regenerate this frame
    seed: int | None = None
    samples: int = 1
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    source_positions: np.ndarray | None = None  # (frames, 22, 3): where the source is; the result is put there too


@dataclass
class Progress:
    step: int  # scales done
    total: int  # scales in all
    preview_joints: np.ndarray | None  # (frames, 22, 3) coarse decode of the first sample


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


class Pipeline:
    def __init__(
        self,
        tokenizer: Tokenizer,
        transformer: Transformer,
        text_encoder: TextEncoder,
        mean: np.ndarray,
        std: np.ndarray,
        device: torch.device,
        name: str,
        preset: str,
        precision: str = "float32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        if text_encoder.dim != transformer.config.text_dim:
            raise ValueError(
                f"text encoder {text_encoder.name} gives {text_encoder.dim}-d features; "
                f"the transformer expects {transformer.config.text_dim}-d"
            )
        if tuple(transformer.config.scales) != tuple(tokenizer.config.scales):
            raise ValueError(
                f"transformer scales {transformer.config.scales} differ from the tokenizer's {tokenizer.config.scales}"
            )
        self.tokenizer = tokenizer.to(device).eval()
        self.transformer = transformer.to(device).eval()
        self.text_encoder = text_encoder
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.device = device
        self.precision = precision
        # A coarse preview costs a decode: at most one per this many seconds of a job (0: every
        # scale). The service sets it, since a preview per scale makes a short job half as slow again.
        self.preview_every_s = 0.0
        self.max_frames = tokenizer.config.max_frames
        self.info = {
            "model": name,
            "preset": preset,
            "text_encoder": text_encoder.name,
            "device": str(device),
            "precision": precision,
            "parameters": {
                "transformer": sum(p.numel() for p in transformer.parameters()),
                "tokenizer": sum(p.numel() for p in tokenizer.parameters()),
            },
        }

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        checkpoint_path: str | Path,
        device: str = "auto",
        text_encoder_path: str | Path | None = None,
        precision: str = "float32",
    ) -> "Pipeline":
        from engine import checkpoint

        ckpt = checkpoint.load(checkpoint_path, device="cpu")
        return cls.from_checkpoint(ckpt, device, text_encoder_path, precision)

    @classmethod
    def from_checkpoint(
        cls, ckpt, device: str = "auto", text_encoder_path: str | Path | None = None, precision: str = "float32"
    ) -> "Pipeline":
        if ckpt.transformer is None:
            raise ValueError("this checkpoint holds only a tokenizer; generating needs a trained transformer too")
        torch_device = resolve_device(device)
        text_encoder = load_text_encoder(ckpt.text_encoder, torch_device, text_encoder_path)
        meta = ckpt.meta or {}
        return cls(
            ckpt.tokenizer,
            ckpt.transformer,
            text_encoder,
            ckpt.mean,
            ckpt.std,
            torch_device,
            name=meta.get("name", "mosa"),
            preset=meta.get("preset", "unknown"),
            precision=precision,
        )

    # --- requests -------------------------------------------------------------------------------
    def generate(
        self,
        request: GenerateRequest,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list:
        """`request.samples` motions of `request.frames` frames for the prompt."""
        return self._run([request], None, on_progress, should_cancel)[0]

    def generate_many(
        self,
        requests: list[GenerateRequest],
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list]:
        """Several requests (other prompts, lengths, seeds; the same sampling options) as one batch:
        the same motions as one by one; the progress preview is the first request's."""
        return self._run(requests, None, on_progress, should_cancel)

    def edit(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list:
        """Regenerate the masked frames of the source motion; tokens outside the mask stay."""
        frames = len(request.frame_mask)
        features = self._source_features(request.source_features, frames)
        frame_mask = np.asarray(request.frame_mask, dtype=bool)
        if frame_mask.ndim != 1 or not frame_mask.any():
            raise ValueError("frame_mask must be a 1-D list of booleans with at least one frame to regenerate (True)")
        length = self._check_frames(FRAMES_PER_LATENT * math.ceil(frames / FRAMES_PER_LATENT))
        normalized = np.zeros((length, representation.FEATURE_SIZE), np.float32)  # padding is zero in normalised space
        normalized[:frames] = representation.normalize(features, self.mean, self.std)
        tokens = self.tokenizer.encode_tokens(torch.from_numpy(normalized)[None].to(self.device))
        full_mask = torch.zeros(1, self.max_frames, dtype=torch.bool, device=self.device)
        full_mask[0, :frames] = torch.from_numpy(frame_mask)
        source = edit_source(
            self.tokenizer.quantizer,
            [t.expand(request.samples, -1) for t in tokens],
            full_mask.expand(request.samples, -1),
        )
        generate_request = GenerateRequest(request.prompt, length, request.seed, request.samples, request.sampling)
        motions = self._run(
            [generate_request],
            source,
            on_progress,
            should_cancel,
            crop=frames,
            edit_weight=seam_weights(full_mask[0].cpu().numpy()),
        )[0]
        if request.source_positions is None:
            return motions
        # Decoded features start at the origin facing +Z; the source may be anywhere (read back
        # off a rig). The frames kept before the span (after it, if it starts the motion) go where
        # the source has them, the rest with them.
        first, last = np.flatnonzero(frame_mask)[[0, -1]]
        kept = np.arange(first) if first > 0 else np.arange(last + 1, frames)
        kept = kept if len(kept) else np.array([0])
        return [
            CanonicalMotion.from_positions(
                representation.align_on_frames(motion.positions, request.source_positions, kept).astype(np.float32),
                fps=motion.fps,
                features=motion.features,
            )
            for motion in motions
        ]

    # --- the work -------------------------------------------------------------------------------
    def _run(
        self,
        requests: list[GenerateRequest],
        edit: EditSource | None,
        on_progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        crop: int | None = None,
        edit_weight: np.ndarray | None = None,
    ) -> list[list]:
        if not requests:
            return []
        options = requests[0].sampling
        if any(r.sampling != options for r in requests):
            raise ValueError("requests batched together must share their sampling options")
        prompts, lengths, generators = [], [], []
        for request in requests:
            prompt = self._check_request(request)
            seed = secrets.randbits(31) if request.seed is None else request.seed
            for index in range(request.samples):
                prompts.append(prompt)
                lengths.append(request.frames)
                generators.append(torch.Generator(device=self.device).manual_seed(seed + index))
        text = self._encode_prompts(prompts)
        lengths_tensor = torch.tensor(lengths, device=self.device)

        on_scale = None
        if on_progress is not None:
            last_preview = time.monotonic() if self.preview_every_s > 0 else -math.inf

            def on_scale(step: int, total: int, z_hat: torch.Tensor) -> None:
                nonlocal last_preview
                joints = None
                if time.monotonic() - last_preview >= self.preview_every_s:
                    preview = self._features(z_hat[:1], [crop or lengths[0]])[0]
                    joints, last_preview = representation.features_to_joints(preview), time.monotonic()
                on_progress(Progress(step, total, joints))

        with self.autocast():
            _, z_hat = sample(
                self.transformer,
                self.tokenizer.quantizer,
                text,
                lengths_tensor,
                generators,
                options,
                edit,
                on_scale,
                should_cancel,
            )
        features = self._features(z_hat, [crop or length for length in lengths], edit, edit_weight)
        motions = [representation.features_to_motion(f) for f in features]
        results, start = [], 0
        for request in requests:
            results.append(motions[start : start + request.samples])
            start += request.samples
        return results

    def autocast(self) -> AbstractContextManager:
        """The context the sampling loop runs in: this pipeline's precision on its device.

        Under half precision (for GPUs; on a CPU without bf16 units it is slower) the transformer's
        and the quantizer's products run in it, the heads and the coarse previews included; the
        guidance mix, the draw of codes, the latent's sum and the final decode stay float32.
        """
        if self.precision == "float32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.precision))

    @torch.no_grad()
    def _features(
        self,
        z_hat: torch.Tensor,
        frames: list[int],
        edit: EditSource | None = None,
        edit_weight: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Decoded latents -> raw features, each cropped to its length.

        For an edit, frames away from the mask are the decode of the source's own tokens, blended
        in by edit_weight (196,): the decoder attends across the whole latent, so a changed span
        alters every decoded frame a little, and unedited frames must not drift.
        """
        decoded = self.tokenizer.decode_latent(z_hat).float().cpu().numpy()
        if edit is not None and edit_weight is not None:
            source = (
                self.tokenizer.decode_latent(self.tokenizer.quantizer.tokens_to_zhat(edit.tokens)).float().cpu().numpy()
            )
            weight = edit_weight.astype(np.float32)[None, :, None]
            decoded = weight * decoded + (1.0 - weight) * source
        return [representation.denormalize(row[:count], self.mean, self.std) for row, count in zip(decoded, frames)]

    def _encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Text features per row, encoding each distinct prompt once."""
        distinct = sorted(set(prompts))
        features = self.text_encoder.encode(distinct).to(self.device)
        return features[[distinct.index(p) for p in prompts]]

    def _check_request(self, request: GenerateRequest) -> str:
        if not isinstance(request.prompt, str) or not request.prompt.strip():
            raise ValueError("the prompt is empty; describe the motion, e.g. 'a person walks forward'")
        self._check_frames(request.frames)
        if not isinstance(request.samples, int) or request.samples < 1:
            raise ValueError(f"samples is {request.samples!r}; expected an integer of at least 1")
        if request.seed is not None and (not isinstance(request.seed, int) or request.seed < 0):
            raise ValueError(f"seed is {request.seed!r}; expected a non-negative integer or None")
        return request.prompt.strip()

    def _check_frames(self, frames: int) -> int:
        if (
            not isinstance(frames, int)
            or frames % FRAMES_PER_LATENT
            or not FRAMES_PER_LATENT <= frames <= self.max_frames
        ):
            raise ValueError(
                f"frames is {frames!r}; expected a multiple of {FRAMES_PER_LATENT} from {FRAMES_PER_LATENT} to {self.max_frames}"
            )
        return frames

    def _source_features(self, source_features: np.ndarray, frames: int) -> np.ndarray:
        """The source's features as one row per frame (the last row repeated when one short)."""
        features = np.asarray(source_features, dtype=np.float32)
        if (
            features.ndim != 2
            or features.shape[1] != representation.FEATURE_SIZE
            or len(features) not in (frames - 1, frames)
            or len(features) < 1
        ):
            raise ValueError(
                f"source features have shape {features.shape}; expected ({frames - 1} or {frames}, {representation.FEATURE_SIZE}) "
                f"for a frame mask of {frames} frames"
            )
        if not np.isfinite(features).all():
            raise ValueError("source features contain NaN or infinite values")
        if len(features) == frames - 1:
            features = np.concatenate([features, features[-1:]])
        return features


def seam_weights(frame_mask: np.ndarray, seam_frames: int = SEAM_FRAMES) -> np.ndarray:
    """Per frame, how much of an edit's decode to take: 1 on the mask, falling linearly to 0
    seam_frames away from it; the rest of the weight goes to the decode of the source."""
    edited = np.flatnonzero(frame_mask)
    distance = np.abs(np.arange(len(frame_mask))[:, None] - edited[None, :]).min(axis=1)
    return np.clip(1.0 - distance / seam_frames, 0.0, 1.0)


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks the GPU when there is one."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
    return resolved
