"""How much of a prompt the demo model has seen: the honest note for prompts outside its captions.

The demo model learns from a few dozen captioned clips (engine.datasets.captions), not from
HumanML3D's 44,970 descriptions. A prompt whose action words never occur in those captions gets
the nearest motion the model knows, and the user should be told so rather than left guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that say nothing about the motion itself ("a person ...", "and then ...").
FILLER = set(
    """a an the person someone somebody man woman he she they it his her their them
and then while with to of in on at by for from up down is are be as into onto this that its
very slowly quickly fast slow again does do doing""".split()
)


def _stem(word: str) -> str:
    """A crude stem that folds walks/walking/walked onto walk; enough to compare vocabularies."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> dict[str, str]:
    """Stem -> the word as written, for the words that describe the motion."""
    return {_stem(word): word for word in re.findall(r"[a-z]+", text.lower()) if word not in FILLER}


@dataclass
class Familiarity:
    known: list[str]  # the prompt's motion words that occur in the training captions
    unknown: list[str]  # and those that never do
    closest_caption: str  # empty when no caption shares a word with the prompt

    @property
    def familiar(self) -> bool:
        return bool(self.known) and len(self.unknown) <= len(self.known) // 2

    def note(self) -> str:
        closest = (
            f'closest training caption: "{self.closest_caption}"'
            if self.closest_caption
            else "no training caption shares a word with it"
        )
        if self.familiar:
            return f"the demo model has seen motions like this ({closest})"
        missing = ", ".join(f'"{word}"' for word in self.unknown) or "none of its words"
        return (
            f"the demo model knows little of this prompt: {missing} never occur in the captions it "
            f"learned from ({closest}), so expect the nearest motion it knows rather than what you asked. "
            "The official MoSa checkpoints cover far more; see the README."
        )


def familiarity(prompt: str, captions: list[str]) -> Familiarity:
    """Which of the prompt's motion words the captions use, and the caption sharing the most of them."""
    if not captions:
        raise ValueError("no training captions to compare the prompt with")
    prompt_words = words(prompt)
    caption_words = [set(words(caption)) for caption in captions]
    vocabulary = set().union(*caption_words)
    shared = [len(prompt_words.keys() & each) for each in caption_words]
    best = max(range(len(captions)), key=shared.__getitem__)
    return Familiarity(
        known=sorted(prompt_words[stem] for stem in prompt_words.keys() & vocabulary),
        unknown=sorted(prompt_words[stem] for stem in prompt_words.keys() - vocabulary),
        closest_caption=captions[best] if shared[best] else "",
    )


def training_captions() -> list[str]:
    """Every caption of the demo dataset the demo model trains on (the clips' and the CMU segments')."""
    from engine.datasets.captions import CAPTIONS
    from engine.datasets.cmu_segments import CAPTIONS as SEGMENT_CAPTIONS

    return [
        caption
        for captions in (CAPTIONS, SEGMENT_CAPTIONS)
        for clip_captions in captions.values()
        for caption in clip_captions
    ]
