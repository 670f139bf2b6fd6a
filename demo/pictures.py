"""Pictures a person can look at: a contact sheet of poses over time and a small animated GIF.

Pillow only (no bpy): the frames come in as rendered PNG files.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

TITLE_HEIGHT = 22
LABEL_COLOUR = (20, 20, 20)


def contact_sheet(frame_paths: list[Path], labels: list[str], columns: int, title: str) -> Image.Image:
    """Tiles in reading order (left to right, then down), each with its label; the title on top."""
    if not frame_paths or len(frame_paths) != len(labels):
        raise ValueError(f"need one label per frame, got {len(frame_paths)} frames and {len(labels)} labels")
    tiles = [Image.open(path).convert("RGB") for path in frame_paths]
    width, height = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * width, TITLE_HEIGHT + rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 5), title, fill=LABEL_COLOUR)
    for number, (tile, label) in enumerate(zip(tiles, labels)):
        if tile.size != (width, height):
            raise ValueError(f"frame {frame_paths[number]} is {tile.size}, the first one {(width, height)}")
        left, top = (number % columns) * width, TITLE_HEIGHT + (number // columns) * height
        sheet.paste(tile, (left, top))
        draw.text((left + 6, top + 4), label, fill=LABEL_COLOUR)
    return sheet


def animated_gif(frame_paths: list[Path], path: Path, fps: float, scale: float = 0.5) -> Path:
    """A looping GIF of the frames, shrunk by `scale` to stay small enough for a README."""
    if not frame_paths:
        raise ValueError("an animated GIF needs at least one frame")
    frames = []
    for frame_path in frame_paths:
        image = Image.open(frame_path).convert("RGB")
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        frames.append(image.resize(size, Image.LANCZOS).quantize(colors=64))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0, optimize=True)
    return path
