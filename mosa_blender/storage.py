"""The canonical motion stored with an action, so it survives save and reload of the .blend.

A compressed .npz of the motion's arrays, base64 text in one string ID property: compact, and
it needs nothing from retarget's motion class to read back.
"""

from __future__ import annotations

import base64
import io

import numpy as np

ARRAY_KEYS = ("positions", "rotations", "root_translation", "parents", "features")


def encode_motion(motion: dict) -> str:
    """Canonical motion dict (fps, joint_names, parents, positions, rotations, ...) -> base64 text."""
    missing = [key for key in ("fps", "joint_names", "positions", "rotations") if key not in motion]
    if missing:
        raise ValueError(f"motion lacks {missing}; expected a canonical motion dict")
    arrays = {
        key: np.asarray(motion[key], dtype=np.int32 if key == "parents" else np.float32)
        for key in ARRAY_KEYS
        if motion.get(key) is not None
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, fps=np.float32(motion["fps"]), joint_names=np.array(motion["joint_names"]), **arrays)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_motion(text: str) -> dict:
    """The inverse of encode_motion: numpy arrays, fps as float, joint names as a list."""
    try:
        archive = np.load(io.BytesIO(base64.b64decode(text.encode("ascii"), validate=True)))
    except (ValueError, OSError) as error:
        raise ValueError(f"the stored motion is not a base64 .npz ({error})") from error
    motion = {key: archive[key] for key in archive.files}
    motion["fps"] = float(motion["fps"])
    motion["joint_names"] = [str(name) for name in motion["joint_names"]]
    return motion
