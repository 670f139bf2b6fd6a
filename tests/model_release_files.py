"""The files the download stand-in serves: an archive in the authors' release layout
(tests/release_layout.py, both datasets at the small size, so that a test downloads 2.7 MB, not
240) and CLIP's text tower under its real file names, 512 wide like ViT-B/32's token features. Needs torch and transformers: the Blender tests, whose Python on the 4.5 LTS run has
neither, make them with `ENGINE_PYTHON -m tests.model_release_files OUT`.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

ARCHIVE = "MoSa.zip"
CLIP = "clip"


def release_zip() -> bytes:
    from tests.release_layout import SMALL_TOKENIZER, SMALL_TRANSFORMER, add_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        add_dataset(archive, "t2m", SMALL_TOKENIZER, SMALL_TRANSFORMER, ("vq_model", "t2m_transformer"), 0)
        add_dataset(archive, "motionx", SMALL_TOKENIZER, SMALL_TRANSFORMER, ("net", "trans"), 1)
    return buffer.getvalue()


def clip_text_tower(folder: Path) -> Path:
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.model_fixtures import save_tiny_clip

    save_tiny_clip(folder)
    config = CLIPTextConfig.from_pretrained(folder)
    config.hidden_size = 512
    CLIPTextModel(config).save_pretrained(folder)
    return folder


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / ARCHIVE).write_bytes(release_zip())
    clip_text_tower(out / CLIP)


if __name__ == "__main__":
    write(Path(sys.argv[1]))
