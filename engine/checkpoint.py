"""The engine's model file: tokenizer, transformer, feature statistics and text encoder in ONE file.

It is read with torch.load(weights_only=True), which only rebuilds tensors and plain containers,
so opening a checkpoint from elsewhere cannot run code. Layout (format "mosa-blender-checkpoint"):

    {format, version,
     tokenizer: {config: dict, state_dict}, transformer: {config: dict, state_dict} or None,
     mean, std: float32 tensors (263,), std already divided by the feature bias,
     text_encoder: {name, dim}, meta: JSON-able dict (name, preset, dataset, training info)}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from engine import tokenizer as tokenizer_module
from engine import transformer as transformer_module
from engine.tokenizer import Tokenizer, TokenizerConfig
from engine.transformer import Transformer, TransformerConfig

FORMAT = "mosa-blender-checkpoint"
VERSION = 1
PRESETS = ("demo", "official")


@dataclass
class Checkpoint:
    tokenizer: Tokenizer
    transformer: Transformer | None  # None for a tokenizer-only file (during training)
    mean: np.ndarray  # (263,) feature mean
    std: np.ndarray  # (263,) feature std with the feature bias applied
    text_encoder: str  # a name engine.text_encoders.load_text_encoder knows
    meta: dict = field(default_factory=dict)


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically: a reader never sees a half-written file."""
    path = Path(path)
    feature_dim = checkpoint.tokenizer.config.feature_dim
    for name in ("mean", "std"):
        values = np.asarray(getattr(checkpoint, name))
        if values.shape != (feature_dim,):
            raise ValueError(f"checkpoint {name} has shape {values.shape}; expected ({feature_dim},)")
    try:
        meta = json.loads(json.dumps(checkpoint.meta))
    except TypeError as error:
        raise ValueError(f"checkpoint meta must hold only JSON values (str, numbers, lists, dicts): {error}") from None
    transformer = checkpoint.transformer
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": _module_entry(checkpoint.tokenizer),
        "transformer": None if transformer is None else _module_entry(transformer),
        "mean": torch.as_tensor(np.asarray(checkpoint.mean, np.float32)),
        "std": torch.as_tensor(np.asarray(checkpoint.std, np.float32)),
        "text_encoder": {
            "name": checkpoint.text_encoder,
            "dim": None if transformer is None else transformer.config.text_dim,
        },
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, partial)
    except BaseException:  # a full disk, Ctrl+C: the half-written file goes, the previous one stays
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _module_entry(module: Tokenizer | Transformer) -> dict:
    return {
        "config": module.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }


def load(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint; a file that is not one, or does not fit its own config, is a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises many types for damaged or foreign files
        raise ValueError(
            f"{path} is not a MoSa checkpoint (torch could not read it: {unreadable_reason(error)})"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str) or payload["format"] != FORMAT:
        raise ValueError(
            f"{path} is not a {FORMAT} file (for the authors' MoSa.zip use `python -m engine import-official`)"
        )
    if type(payload.get("version")) is not int or payload["version"] != VERSION:
        raise ValueError(f"{path} has checkpoint version {payload.get('version')}; this engine reads version {VERSION}")
    missing = sorted({"tokenizer", "transformer", "mean", "std", "text_encoder", "meta"} - set(payload))
    if missing:
        raise ValueError(f"{path} lacks the entries {missing}")

    tokenizer = _build(Tokenizer, TokenizerConfig, _entry(payload, "tokenizer", path), f"{path} tokenizer")
    transformer = None
    if payload["transformer"] is not None:
        transformer = _build(
            Transformer, TransformerConfig, _entry(payload, "transformer", path), f"{path} transformer"
        )

    feature_dim = tokenizer.config.feature_dim
    statistics = {}
    for name in ("mean", "std"):
        values = payload[name]
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (feature_dim,) or values.is_complex():
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"{path}: '{name}' has shape {shape}; expected ({feature_dim},) real numbers")
        statistics[name] = values.detach().cpu().float().numpy()
    text_encoder, meta = payload["text_encoder"], payload["meta"]
    if (
        not isinstance(text_encoder, dict)
        or not isinstance(text_encoder.get("name"), str)
        or not isinstance(meta, dict)
    ):
        raise ValueError(f"{path}: 'text_encoder' must be {{'name': str, ...}} and 'meta' a dict")
    transformer = None if transformer is None else transformer.to(device).eval()
    tokenizer = tokenizer.to(device).eval()
    return Checkpoint(tokenizer, transformer, statistics["mean"], statistics["std"], text_encoder["name"], dict(meta))


def unreadable_reason(error: Exception) -> str:
    """torch's reason for refusing a file, in one short sentence: its message for weights_only loads
    spans paragraphs that advise loading with weights_only=False (which can run the file's code)."""
    text = str(error).split("WeightsUnpickler error:", 1)[-1]
    text = re.sub(r"\[enforce fail at [^\]]*\][\s.]*", "", text)  # the C++ location before torch's own reason
    sentence = next((line.strip() for line in text.splitlines() if line.strip()), "").split(". ", 1)[0].rstrip(".")
    sentence = sentence if len(sentence) <= 160 else sentence[:157] + "..."
    return sentence or type(error).__name__


def _entry(payload: dict, name: str, path: Path) -> dict:
    entry = payload[name]
    if not isinstance(entry, dict) or not {"config", "state_dict"} <= set(entry):
        raise ValueError(f"{path}: '{name}' must hold 'config' and 'state_dict'")
    if not isinstance(entry["config"], dict) or not isinstance(entry["state_dict"], dict):
        raise ValueError(f"{path}: '{name}' config and state_dict must be dicts")
    return entry


MAX_REPEATS = 64  # layers, blocks or scales a config may ask for: far above the presets, far below a hang
_REPEAT_COUNTS = ("depth", "phi_depth", "n_layers")
_REPEAT_LISTS = ("width_mul", "scales", "codebook_sizes")


def _build(module_type: type[nn.Module], config_type: type, entry: dict, source: str) -> nn.Module:
    """The module a file's config describes, with the file's weights. A damaged config must give a
    ValueError, not a constructor's TypeError or an allocation the size of a wrong number: repeat
    counts are bounded, and the weights' shapes are checked on the meta device (no memory) first."""
    config = entry["config"]
    for name in _REPEAT_COUNTS:
        value = config.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPEATS:
            raise ValueError(f"{source}: config '{name}' is {value!r:.40}; expected an integer 0..{MAX_REPEATS}")
    for name in _REPEAT_LISTS:
        value = config.get(name, ())
        if not isinstance(value, (list, tuple)) or len(value) > MAX_REPEATS:
            raise ValueError(f"{source}: config '{name}' must be a list of at most {MAX_REPEATS} integers")
    try:
        parsed = config_type.from_dict(config)
        with torch.device("meta"):
            shapes = module_type(parsed)
    except Exception as error:  # a wrong type or value fails the config or a layer's constructor in many ways
        raise ValueError(f"{source}: the config does not describe a model ({type(error).__name__}: {error})") from None
    state_dict = _upgraded(shapes, entry["state_dict"], source)
    check_state(shapes.state_dict(), state_dict, source)
    module = module_type(parsed)
    module.load_state_dict(state_dict, strict=True)
    return module


def load_state_strict(module: nn.Module, state_dict: dict, source: str) -> None:
    """load_state_dict(strict=True), with an error that names the keys and both shapes."""
    state_dict = _upgraded(module, state_dict, source)
    check_state(module.state_dict(), state_dict, source)
    module.load_state_dict(state_dict, strict=True)


def _upgraded(module: nn.Module, state_dict: dict, source: str) -> dict:
    """States in the forms this engine wrote before it followed the release (1-wide code-space
    kernels, an additive attention mask), brought to the release's form, unchanged in behaviour
    (tokenizer.upgraded_state, transformer.upgraded_state)."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"{source}: the state is a {type(state_dict).__name__}; expected a dict of tensors")
    try:
        if isinstance(module, Tokenizer):
            return tokenizer_module.upgraded_state(state_dict)
        if isinstance(module, Transformer):
            return transformer_module.upgraded_state(state_dict, module.config.scales)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    return state_dict


def check_state(expected: dict, state_dict: dict, source: str) -> None:
    """A ValueError naming the keys or shapes where `state_dict` does not fit the `expected` one."""
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{source}: missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}"
        )
    for key, tensor in expected.items():
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{source}: '{key}' is a {type(value).__name__}, expected a tensor of shape {tuple(tensor.shape)}"
            )
        if value.shape != tensor.shape:
            raise ValueError(
                f"{source}: '{key}' has shape {tuple(value.shape)}; the model expects {tuple(tensor.shape)}"
            )
        if value.is_complex() != tensor.is_complex() or value.is_meta or value.is_sparse:
            raise ValueError(
                f"{source}: '{key}' is a {value.dtype} {value.layout} tensor; expected dense {tensor.dtype} values"
            )


def create_random(
    path: str | Path,
    preset: str = "demo",
    text_encoder: str = "all-minilm-l6-v2",
    text_dim: int | None = None,
    seed: int = 0,
) -> Path:
    """A real model of the preset with random weights (for tests and benchmarks; its motion is noise).

    text_dim defaults to the preset's own encoder (demo: MiniLM 384, official: CLIP 512); pass it
    when pairing a preset with another encoder.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    torch.manual_seed(seed)
    tokenizer_config = getattr(TokenizerConfig, preset)()
    tokenizer = Tokenizer(tokenizer_config)
    for layer in tokenizer.quantizer.layers:  # codebooks are empty until trained: fill them
        layer.init_from(torch.randn(layer.codebook.shape))
    tokenizer.initted.fill_(1.0)
    transformer_config = getattr(TransformerConfig, preset)(tokenizer_config)
    if text_dim is not None:
        transformer_config.text_dim = text_dim
    feature_dim = tokenizer_config.feature_dim
    checkpoint = Checkpoint(
        tokenizer,
        Transformer(transformer_config),
        np.zeros(feature_dim, np.float32),
        np.ones(feature_dim, np.float32),
        text_encoder,
        {"name": f"random-{preset}", "preset": preset, "random": True},
    )
    save(path, checkpoint)
    return Path(path)
