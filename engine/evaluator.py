"""Guo et al. 2022's text-motion matching model: the judge behind the paper's FID and R-precision.

Three networks, with the layout of the released `<dataset>/text_mot_match/model/finest.tar`
(keys movement_encoder, motion_encoder, text_encoder, plus training bookkeeping):
- the movement encoder: two strided convolutions over normalised features without the 4 foot
  contacts (259 inputs), one movement vector per 4 frames;
- the motion encoder: a bidirectional GRU over the movements of the motion's own length;
- the text encoder: a bidirectional GRU over GloVe word vectors plus part-of-speech one-hots.
Both GRUs start from a learnt hidden state, and the last states of both directions give a
512-d embedding in a space shared by text and motion.

The file is read with torch.load(weights_only=True) and each network is loaded strictly; a key
of the wrong shape is named with both shapes. Features given to the evaluator are normalised by
the evaluator's own statistics (`Comp_v6_KLD005/meta/{mean,std}.npy` beside text_mot_match).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from engine.word_vectors import POS_TAGS, WORD_DIM

FEATURE_SIZE = 263
CONTACT_FEATURES = 4  # the last four features (foot contacts) are not shown to the movement encoder
UNIT_FRAMES = 4  # frames per movement vector
MOVEMENT_HIDDEN = MOVEMENT_SIZE = 512
MOTION_HIDDEN = 1024
TEXT_HIDDEN = 512
EMBEDDING_SIZE = 512
MODEL_FILE = Path("text_mot_match") / "model" / "finest.tar"
STATISTICS_FOLDER = Path("Comp_v6_KLD005") / "meta"
NETWORK_KEYS = ("movement_encoder", "motion_encoder", "text_encoder")


class MovementEncoder(nn.Module):
    """(B, T, 259) normalised features -> (B, T / 4, 512) movements."""

    def __init__(self, input_size: int = FEATURE_SIZE - CONTACT_FEATURES) -> None:
        super().__init__()
        # The dropouts do nothing in evaluation; they keep the release's indices (main.0, main.3).
        self.main = nn.Sequential(
            nn.Conv1d(input_size, MOVEMENT_HIDDEN, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(MOVEMENT_HIDDEN, MOVEMENT_SIZE, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(MOVEMENT_SIZE, MOVEMENT_SIZE)

    def forward(self, features: Tensor) -> Tensor:
        return self.out_net(self.main(features.transpose(1, 2)).transpose(1, 2))


class EmbeddingHead(nn.Sequential):
    """Both GRU directions' last states -> the shared embedding (output_net in the release)."""

    def __init__(self, hidden: int) -> None:
        super().__init__(
            nn.Linear(hidden * 2, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, EMBEDDING_SIZE)
        )


class BiGRU(nn.Module):
    """A bidirectional GRU from a learnt start state over sequences of given lengths, any order."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.input_emb = nn.Linear(input_size, hidden)
        self.output_net = EmbeddingHead(hidden)
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden))

    def encode(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(self.input_emb(inputs), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.repeat(1, inputs.shape[0], 1))
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoder(BiGRU):
    """(B, T / 4, 512) movements and their counts -> (B, 512) motion embeddings."""

    def __init__(self) -> None:
        super().__init__(MOVEMENT_SIZE, MOTION_HIDDEN)

    def forward(self, movements: Tensor, units: Tensor) -> Tensor:
        return self.encode(movements, units)


class TextEncoder(BiGRU):
    """(B, L, 300) word vectors, (B, L, 15) POS one-hots and token counts -> (B, 512) text embeddings."""

    def __init__(self) -> None:
        super().__init__(WORD_DIM, TEXT_HIDDEN)
        self.pos_emb = nn.Linear(len(POS_TAGS), WORD_DIM)

    def forward(self, word_vectors: Tensor, pos_one_hots: Tensor, lengths: Tensor) -> Tensor:
        return self.encode(word_vectors + self.pos_emb(pos_one_hots), lengths)


def load_strict(module: nn.Module, state: object, name: str, source: Path) -> None:
    """Load `state` into `module` or say which key is missing, unexpected or of the wrong shape."""
    if not isinstance(state, dict):
        raise ValueError(f"{source}: '{name}' holds a {type(state).__name__}; expected a state dict")
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{source}: '{name}' does not match Guo et al.'s evaluator: missing {missing}, unexpected {unexpected}"
        )
    for key, tensor in expected.items():
        if not isinstance(state[key], Tensor) or tuple(state[key].shape) != tuple(tensor.shape):
            shape = tuple(state[key].shape) if isinstance(state[key], Tensor) else type(state[key]).__name__
            raise ValueError(f"{source}: {name}.{key} has shape {shape}; the evaluator expects {tuple(tensor.shape)}")
    module.load_state_dict(state, strict=True)


@dataclass
class Evaluator:
    """The three networks in evaluation mode and the feature statistics they were trained with."""

    movement_encoder: MovementEncoder
    motion_encoder: MotionEncoder
    text_encoder: TextEncoder
    mean: np.ndarray  # (263,)
    std: np.ndarray  # (263,)
    device: torch.device
    epoch: int | None = None

    @classmethod
    def load(cls, folder: Path, device: str | torch.device = "cpu") -> "Evaluator":
        """From the folder holding text_mot_match/ and Comp_v6_KLD005/ (checkpoints/t2m or checkpoints/motionx)."""
        folder = Path(folder)
        model_file = folder / MODEL_FILE
        if not model_file.is_file():
            raise FileNotFoundError(
                f"no evaluator at {model_file}; give the folder that holds {MODEL_FILE} (e.g. checkpoints/t2m)"
            )
        try:
            content = torch.load(model_file, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for damaged or unsafe files
            raise ValueError(f"{model_file} is not a readable weights file ({type(error).__name__}: {error})") from None
        if not isinstance(content, dict) or any(key not in content for key in NETWORK_KEYS):
            found = sorted(content) if isinstance(content, dict) else type(content).__name__
            raise ValueError(f"{model_file} holds {found}; expected the keys {list(NETWORK_KEYS)}")
        networks = {
            "movement_encoder": MovementEncoder(),
            "motion_encoder": MotionEncoder(),
            "text_encoder": TextEncoder(),
        }
        for name, network in networks.items():
            load_strict(network, content[name], name, model_file)
            network.to(device).eval()
        mean, std = read_statistics(folder / STATISTICS_FOLDER)
        epoch = content.get("epoch")
        return cls(
            **networks,
            mean=mean,
            std=std,
            device=torch.device(device),
            epoch=int(epoch) if isinstance(epoch, int) else None,
        )

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """Raw features -> the evaluator's normalised space."""
        return ((features - self.mean) / self.std).astype(np.float32)

    @torch.no_grad()
    def embed_motions(self, normalized: Tensor, frames: Tensor) -> Tensor:
        """(B, T, 263) features in the evaluator's normalisation, padded, and each motion's frames -> (B, 512).

        As the release, the convolutions see the whole padded array and the GRU the first
        frames // 4 movements.
        """
        movements = self.movement_encoder(normalized.to(self.device).float()[..., :-CONTACT_FEATURES])
        return self.motion_encoder(movements, torch.as_tensor(frames) // UNIT_FRAMES)

    @torch.no_grad()
    def embed_texts(self, word_vectors: Tensor, pos_one_hots: Tensor, lengths: Tensor) -> Tensor:
        return self.text_encoder(
            word_vectors.to(self.device).float(), pos_one_hots.to(self.device).float(), torch.as_tensor(lengths)
        )


def read_statistics(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's mean.npy and std.npy (263,)."""
    arrays = []
    for name in ("mean.npy", "std.npy"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"no {path}: the evaluator's feature statistics ship beside text_mot_match in {STATISTICS_FOLDER}"
            )
        array = np.load(path, allow_pickle=False)
        if array.shape != (FEATURE_SIZE,):
            raise ValueError(f"{path} has shape {array.shape}; expected ({FEATURE_SIZE},)")
        arrays.append(array.astype(np.float32))
    return arrays[0], arrays[1]
