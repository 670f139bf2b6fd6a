"""What the model tests share: one torch thread, and a tiny random CLIP text model on disk.

The CLIP builder has the structure of CLIP ViT-B/32's text tower (CLIPTextModel +
CLIPTokenizer, saved with save_pretrained) at a tiny size, so the real loading code runs
without the 250 MB weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

TINY_CLIP_WIDTH = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models run many times faster on one thread than on cores shared with other work
    (a test module imports this fixture to use it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins of GPT-2/CLIP byte-level BPE, one per byte."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols, extra = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A CLIPTextModel (width 32, 2 layers, 77 positions) and a byte-level CLIPTokenizer in folder."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    symbols = _byte_symbols()
    vocab_tokens = symbols + [s + "</w>" for s in symbols] + ["wa", "walk</w>", "<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(vocab_tokens)}
    merges = [("w", "a"), ("wa", "l"), ("wal", "k</w>")]
    vocab.update({"wal": len(vocab)})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=TINY_CLIP_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=16,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    CLIPTextModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
