"""What the evaluator's text encoder reads: a GloVe vector and a part-of-speech one-hot per token.

Tokens are HumanML3D's `word/POS` strings (texts/<id>.txt stores them; a plain caption line, as
Motion-X's, is tagged with spaCy's en_core_web_sm as the release does). Each caption becomes
`sos`, at most 20 tokens, `eos`, padded with `unk` to 22 rows.

Two vector tables, as the release reads them:
- HumanML3D: the evaluator's own GloVe subset (`our_vab_data.npy`, `our_vab_words.pkl`,
  `our_vab_idx.pkl` in the user's glove/ folder). A word outside it reads as `unk` with the
  OTHER tag.
- Motion-X: the full GloVe 6B 300-d vectors (`glove.6B.300d.txt`); a word outside them is a zero
  vector and keeps its tag.
Words of the five motion lists below take their list's tag in place of their own.

The .pkl files are read by an unpickler that builds plain lists, dicts, strings and numbers
(and numpy scalars) only, so a file from the internet cannot run code.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

WORD_DIM = 300
MAX_WORDS = 20  # tokens kept per caption, before sos/eos
POS_TAGS = (
    "VERB",
    "NOUN",
    "DET",
    "ADP",
    "NUM",
    "AUX",
    "PRON",
    "ADJ",
    "ADV",
    "Loc_VIP",
    "Body_VIP",
    "Obj_VIP",
    "Act_VIP",
    "Desc_VIP",
    "OTHER",
)
MOTION_WORDS = {
    "Loc_VIP": (
        "left",
        "right",
        "clockwise",
        "counterclockwise",
        "anticlockwise",
        "forward",
        "back",
        "backward",
        "up",
        "down",
        "straight",
        "curve",
    ),
    "Body_VIP": (
        "arm",
        "chin",
        "foot",
        "feet",
        "face",
        "hand",
        "mouth",
        "leg",
        "waist",
        "eye",
        "knee",
        "shoulder",
        "thigh",
    ),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": (
        "walk",
        "run",
        "swing",
        "pick",
        "bring",
        "kick",
        "put",
        "squat",
        "throw",
        "hop",
        "dance",
        "jump",
        "turn",
        "stumble",
        "stop",
        "sit",
        "lift",
        "lower",
        "raise",
        "wash",
        "stand",
        "kneel",
        "stroll",
        "rub",
        "bend",
        "balance",
        "flap",
        "jog",
        "shuffle",
        "lean",
        "rotate",
        "spin",
        "spread",
        "climb",
    ),
    "Desc_VIP": (
        "slowly",
        "carefully",
        "fast",
        "careful",
        "slow",
        "quickly",
        "happy",
        "angry",
        "sad",
        "happily",
        "angrily",
        "sadly",
    ),
}
MOTION_WORD_TAG = {word: tag for tag, words in MOTION_WORDS.items() for word in words}
VOCABULARY_FILES = ("our_vab_data.npy", "our_vab_words.pkl", "our_vab_idx.pkl")
SPACY_MODEL = "en_core_web_sm"  # the release's tagger; optional here (not a PyPI package)
GLOVE_6B_FILE = "glove.6B.300d.txt"


class PlainUnpickler(pickle.Unpickler):
    """Builds only what pickle makes without importing: lists, dicts, tuples, strings, numbers;
    plus numpy scalars and dtypes, which word-index files sometimes hold."""

    ALLOWED: ClassVar[frozenset] = frozenset(
        {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only plain lists, dicts, strings and numbers are read"
        )


def read_plain_pickle(path: Path) -> object:
    try:
        return PlainUnpickler(io.BytesIO(Path(path).read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass
class WordVectors:
    """word -> 300-d vector; `unknown` says what a word outside the table reads as."""

    vectors: dict[str, np.ndarray]
    unknown: str  # "unk": the `unk` vector with the OTHER tag (HumanML3D); "zero": zeros, own tag (Motion-X)
    source: str

    @classmethod
    def humanml3d(cls, folder: Path) -> "WordVectors":
        """The evaluator's GloVe subset from the user's glove/ folder."""
        folder = Path(folder)
        missing = [name for name in VOCABULARY_FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"GloVe vectors not found: {folder} lacks {', '.join(missing)}. The HumanML3D evaluator "
                "reads the glove/ folder shipped with it (MoMask's prepare/download_glove.sh); give it with --glove"
            )
        table = np.load(folder / "our_vab_data.npy", allow_pickle=False)
        words, index = read_plain_pickle(folder / "our_vab_words.pkl"), read_plain_pickle(folder / "our_vab_idx.pkl")
        if not isinstance(words, list) or not isinstance(index, dict):
            raise ValueError(
                f"{folder}: expected a list of words and a dict word -> row, got {type(words).__name__} and {type(index).__name__}"
            )
        if table.ndim != 2 or table.shape[1] != WORD_DIM:
            raise ValueError(f"{folder / 'our_vab_data.npy'} has shape {table.shape}; expected (words, {WORD_DIM})")
        try:
            vectors = {str(word): table[int(index[word])] for word in words}
        except (KeyError, IndexError) as error:
            raise ValueError(f"{folder}: word list and index disagree ({error!r})") from None
        if "unk" not in vectors:
            raise ValueError(f"{folder}: the vocabulary has no 'unk' word, which unknown words read as")
        return cls(vectors, "unk", str(folder))

    @classmethod
    def glove_6b(cls, path: Path, words: set[str] | None = None) -> "WordVectors":
        """GloVe 6B 300-d from its text file (or a folder holding glove.6B.300d.txt); only `words` if given."""
        path = Path(path)
        if path.is_dir():
            path = path / GLOVE_6B_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"GloVe vectors not found at {path}. The Motion-X evaluation reads GloVe 6B 300-d "
                f"({GLOVE_6B_FILE}, as torchtext's GloVe('6B', 300)); give the file or its folder with --glove"
            )
        vectors = {}
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                word, _, values = line.rstrip("\n").partition(" ")
                if words is None or word in words:
                    vector = np.array(values.split(" "), dtype=np.float32)
                    if vector.shape != (WORD_DIM,):
                        raise ValueError(
                            f"{path}: the vector of {word!r} has {vector.size} values; expected {WORD_DIM}"
                        )
                    vectors[word] = vector
        return cls(vectors, "zero", str(path))

    def __getitem__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """`word/POS` -> (vector (300,), POS one-hot (15,))."""
        word, _, tag = token.rpartition("/")
        if word in self.vectors:
            vector = self.vectors[word]
        elif self.unknown == "unk":
            return self.vectors["unk"], pos_one_hot("OTHER")
        else:
            vector = np.zeros(WORD_DIM, np.float32)
        return vector, pos_one_hot(MOTION_WORD_TAG.get(word, tag))


def pos_one_hot(tag: str) -> np.ndarray:
    one_hot = np.zeros(len(POS_TAGS), np.float32)
    one_hot[POS_TAGS.index(tag) if tag in POS_TAGS else POS_TAGS.index("OTHER")] = 1.0
    return one_hot


def caption_rows(tokens: list[str], table: WordVectors) -> tuple[np.ndarray, np.ndarray, int]:
    """A caption's tokens -> word vectors (22, 300), POS one-hots (22, 15) and its row count (sos..eos)."""
    tokens = ["sos/OTHER"] + tokens[:MAX_WORDS] + ["eos/OTHER"]
    length = len(tokens)
    tokens += ["unk/OTHER"] * (MAX_WORDS + 2 - length)
    rows = [table[token] for token in tokens]
    return np.stack([r[0] for r in rows]).astype(np.float32), np.stack([r[1] for r in rows]), length


def tokens_from_tagged(tagged: list[tuple[str, str, str]]) -> list[str]:
    """(text, POS, lemma) per word, as spaCy gives them -> `word/POS` tokens, HumanML3D's way:
    words only, nouns and verbs as their lemma ('left' stays 'left')."""
    tokens = []
    for text, pos, lemma in tagged:
        if not text.isalpha():
            continue
        word = lemma if pos in ("NOUN", "VERB") and text != "left" else text
        tokens.append(f"{word}/{pos}")
    return tokens


class SpacyTagger:
    """spaCy's en_core_web_sm, loaded on first use: the tags the release gives Motion-X's plain captions."""

    def __init__(self) -> None:
        self._nlp = None

    def __call__(self, caption: str) -> list[str]:
        if self._nlp is None:
            self._nlp = load_spacy()
        return tokens_from_tagged([(t.text, t.pos_, t.lemma_) for t in self._nlp(caption.replace("-", ""))])


def load_spacy():
    message = (
        f"plain caption lines (Motion-X's texts) are tagged with spaCy's {SPACY_MODEL}, as the release does: "
        f"`pip install spacy` then `python -m spacy download {SPACY_MODEL}` (spaCy's own download: the model is "
        "not a PyPI package), or store `caption#tokens#start#end` lines"
    )
    if importlib.util.find_spec("spacy") is None:
        raise RuntimeError(f"spaCy is not installed; {message}")
    import spacy

    try:
        return spacy.load(SPACY_MODEL)
    except OSError as error:
        raise RuntimeError(f"spaCy has no {SPACY_MODEL} ({error}); {message}") from None
