"""BVH reading and writing: the real template file, real clips written and read back, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from engine import representation
from engine.datasets import real_clips
from retarget import bvh, canonical, rotations
from retarget.motion import CanonicalMotion

TWO_JOINTS = """HIERARCHY
ROOT Base
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT Tip
  {
    OFFSET 0 1 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 0.5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
1 2 3 0 0 0 0 0 0
0 0 0 90 0 0 0 0 0
"""


@pytest.fixture(scope="module")
def template(shared_data) -> bvh.BvhClip:
    return bvh.read_clip(shared_data / "humanml3d_template.bvh")


def test_template_hierarchy_and_motion(template):
    assert template.names == [canonical.JOINT_NAMES[j] for j in canonical.BVH_ORDER]
    assert template.channels[0] == bvh.POSITION_CHANNELS + bvh.TEMPLATE_CHANNELS
    assert all(channels == bvh.TEMPLATE_CHANNELS for channels in template.channels[1:])
    assert template.frames == 720 and template.fps == 60.0 and len(template.end_sites) == 5
    expected_parents = [canonical.BVH_ORDER.index(canonical.PARENTS[j]) if j else -1 for j in canonical.BVH_ORDER]
    assert template.parents.tolist() == expected_parents
    positions = template.positions()
    bones = np.linalg.norm(positions[:, 1:] - positions[:, template.parents[1:]], axis=-1)
    np.testing.assert_allclose(
        bones, np.broadcast_to(np.linalg.norm(template.offsets[1:], axis=-1), bones.shape), atol=1e-9
    )


def test_channels_in_any_order_and_positions_replace_the_offset():
    clip = bvh.parse_bvh(TWO_JOINTS)
    positions = clip.positions()
    np.testing.assert_allclose(positions[0], [[1, 2, 3], [1, 3, 3]], atol=1e-12)
    # Xrotation 90 on the root turns the tip's +Y offset onto +Z.
    np.testing.assert_allclose(positions[1], [[0, 0, 0], [0, 0, 1]], atol=1e-12)
    assert list(clip.end_sites) == [1] and np.allclose(clip.end_sites[1], [0, 0.5, 0])
    again = bvh.parse_bvh(bvh.format_bvh(clip))
    assert again.channels == clip.channels
    np.testing.assert_allclose(again.positions(), positions, atol=1e-6)


def test_generic_round_trip_of_the_template(template, tmp_path):
    bvh.write_clip(tmp_path / "copy.bvh", template)
    copy = bvh.read_clip(tmp_path / "copy.bvh")
    assert copy.names == template.names and copy.channels == template.channels
    np.testing.assert_allclose(copy.positions(), template.positions(), atol=1e-5)
    assert rotations.angle_between(copy.rotations, template.rotations).max() < 1e-5


def canonical_sources(shared_data) -> dict[str, np.ndarray]:
    """Every real clip, raw and normalised, and the template's own motion."""
    sources = {}
    for name, joints in real_clips(shared_data):
        sources[name] = joints
        sources[name + "_normalized"] = representation.normalize_joints(joints)
    sources["template"] = bvh.read_bvh(shared_data / "humanml3d_template.bvh").positions
    return sources


def test_canonical_motion_written_and_read_back_keeps_every_position(shared_data, tmp_path):
    for name, positions in canonical_sources(shared_data).items():
        motion = CanonicalMotion.from_positions(positions, fps=20)
        bvh.write_bvh(tmp_path / f"{name}.bvh", motion)
        back = bvh.read_bvh(tmp_path / f"{name}.bvh")
        error = np.abs(back.positions - motion.positions).max()
        assert error < 1e-5, f"{name}: {error * 1000:.4f} mm"
        assert back.fps == 20.0 and back.joint_names == canonical.JOINT_NAMES


def test_written_offsets_are_the_clip_bone_lengths(shared_data):
    positions = representation.normalize_joints(dict(real_clips(shared_data))["deepmimic_walk"])
    clip = bvh.canonical_clip(CanonicalMotion.from_positions(positions))
    lengths = np.linalg.norm(clip.offsets[1:], axis=-1)
    np.testing.assert_allclose(lengths, np.linalg.norm(canonical.OFFSETS[canonical.BVH_ORDER[1:]], axis=-1), atol=1e-6)
    np.testing.assert_array_equal(clip.offsets[0], 0.0)


MALFORMED = {
    "no hierarchy": ("ROOT Hips\n", r"<bvh>:1: expected 'HIERARCHY'"),
    "bad offset": (TWO_JOINTS.replace("OFFSET 0 1 0", "OFFSET 0 one 0"), r"<bvh>:8: expected numbers"),
    "short offset": (TWO_JOINTS.replace("OFFSET 0 1 0", "OFFSET 0 1"), r"<bvh>:8: expected 'OFFSET' with 3 values"),
    "unknown channel": (
        TWO_JOINTS.replace("Yrotation Xrotation", "Wrotation Xrotation"),
        r"<bvh>:9: unknown or repeated channels",
    ),
    "channel count": (TWO_JOINTS.replace("CHANNELS 3", "CHANNELS 4"), r"<bvh>:9: CHANNELS must give a count"),
    "stray token": (TWO_JOINTS.replace("    End Site", "    Bone Tip"), r"<bvh>:10: expected JOINT <name>, End Site"),
    "short frame": (
        TWO_JOINTS.replace("0 0 0 90 0 0 0 0 0", "0 0 0 90 0 0 0 0"),
        r"<bvh>:20: frame 2 has 8 values; the hierarchy has 9",
    ),
    "missing frame": (TWO_JOINTS.replace("Frames: 2", "Frames: 3"), r"the file ends where frame 3 of 3 was expected"),
    "extra frame": (TWO_JOINTS.replace("Frames: 2", "Frames: 1"), r"<bvh>:20: more frame lines than the 1"),
    "bad frame time": (
        TWO_JOINTS.replace("Frame Time: 0.05", "Frame Time: 0"),
        r"<bvh>:18: the frame time must be a positive number of seconds",
    ),
    "two roots": (TWO_JOINTS.replace("MOTION", "ROOT Other\nMOTION"), r"<bvh>:16: expected MOTION after the hierarchy"),
    "unclosed": (
        TWO_JOINTS.split("MOTION")[0].rstrip()[:-1],
        r"the file ends where JOINT, End Site or '}' in Base was expected",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_name_the_line(case):
    text, message = MALFORMED[case]
    with pytest.raises(ValueError, match=message):
        bvh.parse_bvh(text)


def test_read_bvh_needs_the_canonical_joints(tmp_path):
    (tmp_path / "two.bvh").write_text(TWO_JOINTS)
    with pytest.raises(ValueError, match=r"lacks the canonical joints \['Hips'"):
        bvh.read_bvh(tmp_path / "two.bvh")
