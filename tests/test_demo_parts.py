"""The demo's plain parts, without Blender: its options, the prompt note, the body shapes, the pictures."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from demo import __main__ as driver
from demo.body_shapes import sphere, tube
from demo.familiarity import familiarity, training_captions
from demo.pictures import TITLE_HEIGHT, animated_gif, contact_sheet


def test_options_and_their_clear_errors(capsys):
    args = driver.parse_args(["A person walks forward, and waves!", "--frames", "60", "--extension", "x.zip"])
    assert (args.name, args.seconds, args.width, args.height) == ("a_person_walks_forward_and_waves", 3.0, 320, 240)
    for bad, message in (
        (["--seconds", "12"], "2 to 9.8 s"),
        (["--frames", "42"], "try 40"),
        (["--size", "big"], "expected WIDTHxHEIGHT"),
    ):
        with pytest.raises(SystemExit):
            driver.parse_args([*bad, "--extension", "x.zip"])
        assert message in capsys.readouterr().err
    assert driver.slug("!!!") == "motion"


def test_the_demo_refuses_to_pass_random_weights_off_as_the_demo_model(tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "DEMO_CHECKPOINT", tmp_path / "demo.pt")
    monkeypatch.setattr(driver, "ROOT", tmp_path)
    args = driver.parse_args(["--extension", "x.zip", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="(?s)demo.pt is not in this checkout yet.*--random-model"):
        driver.choose_checkpoint(args)


def test_the_demo_runs_a_downloaded_official_model_or_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSA_MODELS_DIR", str(tmp_path))
    args = driver.parse_args(["--model", "humanml3d", "--extension", "x.zip"])
    with pytest.raises(
        SystemExit, match="(?s)humanml3d model is not downloaded yet.*python -m engine models download official"
    ):
        driver.choose_checkpoint(args)
    # What `models download official` leaves: the checkpoint, the text tower (its config and whole
    # weights: a safetensors file of no tensors here) in the Hub cache, the manifest naming both.
    (tmp_path / "humanml3d.pt").write_bytes(b"checkpoint")
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text("{}")
    (tmp_path / "clip" / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    (tmp_path / "installed.json").write_text(
        json.dumps({"humanml3d": {"file": "humanml3d.pt", "text_encoder": str(tmp_path / "clip")}})
    )
    assert driver.choose_checkpoint(args) == (tmp_path / "humanml3d.pt", False)
    with pytest.raises(SystemExit):
        driver.parse_args(["--model", "humanml3d", "--checkpoint", "x.pt", "--extension", "x.zip"])


def test_prompt_note_tells_known_from_unknown_motions():
    captions = training_captions()
    assert len(captions) > 50
    walk = familiarity("a person walks forward", captions)
    assert walk.familiar and walk.known == ["forward", "walks"] and "walk" in walk.closest_caption
    strange = familiarity("someone juggles three balls on a unicycle", captions)
    assert not strange.familiar and {"juggles", "unicycle"} <= set(strange.unknown)
    assert "knows little of this prompt" in strange.note() and '"unicycle"' in strange.note()
    with pytest.raises(ValueError, match="no training captions"):
        familiarity("a person walks", [])


def test_a_tube_follows_its_bone_and_tapers():
    rest = np.eye(4)
    rest[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # the bone's Y axis points up (+Z)
    rest[:3, 3] = [1.0, 2.0, 3.0]
    vertices, faces = tube(rest, length=0.5, head_radii=(0.2, 0.1), tail_radii=(0.1, 0.05), segments=8)
    assert vertices.shape == (16, 3) and len(faces) == 8 + 2
    np.testing.assert_allclose(vertices[:8, 2], 3.0, atol=1e-12)  # the head ring at the bone's head
    np.testing.assert_allclose(vertices[8:, 2], 3.5, atol=1e-12)  # the tail ring one length up
    np.testing.assert_allclose(np.ptp(vertices[:8, 0]), 0.4)  # x half-width 0.2 at the head
    np.testing.assert_allclose(np.ptp(vertices[8:, 0]), 0.2)  # tapering to 0.1
    assert max(max(face) for face in faces) == 15


def test_a_sphere_is_closed_and_round():
    vertices, faces = sphere(np.array([0.0, 0.0, 1.0]), radius=0.1, rings=6, segments=10)
    np.testing.assert_allclose(np.linalg.norm(vertices - [0, 0, 1], axis=1), 0.1)
    edges = {}
    for face in faces:
        for a, b in zip(face, face[1:] + face[:1]):
            edges[frozenset((a, b))] = edges.get(frozenset((a, b)), 0) + 1
    assert set(edges.values()) == {2}  # every edge shared by two faces: no holes


def test_contact_sheet_and_gif(tmp_path):
    paths = []
    for number, shade in enumerate((0, 80, 160, 240, 40)):
        path = tmp_path / f"{number}.png"
        Image.new("RGB", (40, 30), (shade, shade, shade)).save(path)
        paths.append(path)
    sheet = contact_sheet(paths, [f"{n}" for n in range(5)], columns=3, title="a person walks")
    assert sheet.size == (120, TITLE_HEIGHT + 60)
    assert sheet.getpixel((40 + 35, TITLE_HEIGHT + 25)) == (80, 80, 80)  # second tile, top row
    assert sheet.getpixel((35, TITLE_HEIGHT + 30 + 25)) == (240, 240, 240)  # fourth tile starts row two
    gif = Image.open(animated_gif(paths, tmp_path / "a.gif", fps=10))
    assert gif.size == (20, 15) and gif.n_frames == 5 and gif.info["duration"] == 100
    with pytest.raises(ValueError, match="one label per frame"):
        contact_sheet(paths, ["only one"], columns=2, title="")
