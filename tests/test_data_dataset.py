"""The demo dataset: built from the real clips into tmp_path, in HumanML3D layout, and read back."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engine.__main__ import main as engine_main
from engine.datasets import build, captions, cmu_segments, layout
from retarget import canonical


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("dataset")
    started = time.perf_counter()
    report = build.build_dataset(build.BuildConfig(out=out, shared_data=shared_data))
    print(f"\ndataset build: {time.perf_counter() - started:.2f} s\n{report.summary()}")
    return out, report


def test_dataset_has_every_clip_with_mirrors_and_reports_its_size(dataset):
    out, report = dataset
    info = json.loads((out / "dataset.json").read_text())
    clips = {entry["clip"] for entry in info["samples_by_id"].values()}
    # 15 DeepMimic clips + 1 AIST++ take + 1 CMU take + the composed walk and wave, minus the
    # kick (31 frames, does not loop); then the segments of 84 more CMU trials.
    segments = {s.name for s in cmu_segments.SEGMENTS}
    assert len(clips - segments) == 17 and segments <= clips and "deepmimic_kick" not in clips
    assert report.clips == 17 + 84 and report.segments == len(clips) == 17 + len(segments)
    assert {"cmu_111_37", "composed_walk_wave"} <= clips
    assert any("deepmimic_kick" in reason for reason in report.dropped)
    # The 12 s AIST++ take (240 frames) becomes two windows of 196 frames.
    assert sum(e["clip"].startswith("aistpp") for e in info["samples_by_id"].values()) == 2
    old_samples = 2 * sum(e["clip"] not in segments for e in info["samples_by_id"].values())
    assert old_samples == 2 * 18
    assert report.captions == sum(2 * len(captions.captions_for(e["clip"])) for e in info["samples_by_id"].values())
    assert all(
        len(captions.captions_for(e["clip"])) == 12 for e in info["samples_by_id"].values() if e["clip"] not in segments
    )
    assert report.frames == sum(len(layout.read_joints(out, n)) for n in layout.read_names(out, "all"))
    # The acceptance: at least five times the first demo dataset's 140 s.
    assert report.frames / canonical.FPS >= 5 * 140
    assert len(report.kinds) == len(info["kinds"]) == 27 and {"walk", "ballet", "dribble", "swordplay"} <= report.kinds
    assert {e["kind"] for e in info["samples_by_id"].values()} == report.kinds


def test_samples_have_the_humanml3d_shapes_and_captions(dataset):
    out, _ = dataset
    names = layout.read_names(out, "all")
    for name in names:
        joints = layout.read_joints(out, name)
        assert joints.dtype == np.float32 and joints.shape[1:] == (22, 3)
        assert build.MIN_FRAMES <= len(joints) <= canonical.MAX_FRAMES
        assert joints[..., 1].min() == pytest.approx(0.0, abs=1e-5)
        texts = layout.read_texts(out, name)
        assert len(texts) >= 6 and len({t.caption for t in texts}) == len(texts)
        for text in texts:
            assert text.tokens.split()[0].count("/") == 1 and text.start == text.end == 0.0


def test_splits_are_disjoint_by_source_clip(dataset):
    out, _ = dataset
    info = json.loads((out / "dataset.json").read_text())
    clip_of = {}
    for sample_id, entry in info["samples_by_id"].items():
        clip_of[sample_id] = clip_of[layout.MIRROR_PREFIX + sample_id] = entry["clip"]
    splits = {split: set(layout.read_names(out, split)) for split in layout.SPLITS}
    assert all(splits.values())
    assert (
        not (splits["train"] & splits["val"])
        and not (splits["train"] & splits["test"])
        and not (splits["val"] & splits["test"])
    )
    assert set().union(*splits.values()) == set(layout.read_names(out, "all"))
    clips = {split: {clip_of[n] for n in names} for split, names in splits.items()}
    assert not (clips["train"] & clips["val"]) and not (clips["train"] & clips["test"])


def test_mirrored_copies_swap_sides_in_motion_and_text(dataset):
    out, _ = dataset
    info = json.loads((out / "dataset.json").read_text())
    cartwheel = next(i for i, e in info["samples_by_id"].items() if e["clip"] == "deepmimic_cartwheel")
    source = layout.read_joints(out, cartwheel)
    mirrored = layout.read_joints(out, layout.MIRROR_PREFIX + cartwheel)
    # The cartwheel travels to the performer's left (+X); its mirror image to the right.
    assert source[-1, 0, 0] > 1.0 and mirrored[-1, 0, 0] < -1.0
    assert np.allclose(mirrored[:, 1], source[:, 2] * [-1, 1, 1], atol=1e-6)  # left hip <- right hip
    source_text = [t.caption for t in layout.read_texts(out, cartwheel)]
    mirrored_text = [t.caption for t in layout.read_texts(out, layout.MIRROR_PREFIX + cartwheel)]
    assert "a person does a cartwheel to the left." in source_text
    assert "a person does a cartwheel to the right." in mirrored_text
    assert mirrored_text == [captions.mirror_caption(c) for c in source_text]


def test_features_statistics_and_read_split(dataset):
    out, report = dataset
    mean, std = layout.read_statistics(out)
    assert mean.shape == std.shape == (263,) and np.isfinite(mean).all() and (std > 0).all()
    samples = layout.read_split(out, "train")
    assert len(samples) == len(layout.read_names(out, "train"))
    for sample in samples:
        joints = layout.read_joints(out, sample.name)
        assert sample.features.shape == (len(joints) - 1, 263)
        assert len(sample.captions) >= 8


def test_build_dataset_command_prints_the_size(tmp_path, shared_data, capsys):
    code = engine_main(
        ["build-dataset", "--out", str(tmp_path / "ds"), "--shared-data", str(shared_data), "--no-mirror"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "clips 101, segments 115, samples 124" in printed and "distinct kinds 27" in printed
    assert (tmp_path / "ds" / "README.md").exists() and not list((tmp_path / "ds" / "new_joints").glob("M*"))


def test_window_starts_cover_long_clips():
    assert build.window_starts(100, 196) == [0]
    assert build.window_starts(240, 196) == [0, 44]
    starts = build.window_starts(500, 196)
    assert starts[0] == 0 and starts[-1] + 196 == 500 and len(starts) == 3


def test_every_caption_is_tagged_and_mirrors_cleanly():
    for clip, lines in [*captions.CAPTIONS.items(), *cmu_segments.CAPTIONS.items()]:
        assert len(lines) >= (8 if clip in cmu_segments.CAPTIONS else 6) and len(set(lines)) == len(lines), clip
        for line in lines:
            tags = captions.tokens(line).split()
            assert all(tag.split("/")[1].isupper() for tag in tags)
            assert captions.mirror_caption(captions.mirror_caption(line)) == line
    assert captions.tokens("A person walks forward.") == "a/DET person/NOUN walk/VERB forward/ADV"
    assert captions.mirror_caption("Left arm up, then the right leg.") == "Right arm up, then the left leg."
    with pytest.raises(ValueError, match="not in the caption vocabulary"):
        captions.tokens("a person juggles")
    with pytest.raises(ValueError, match="no captions"):
        captions.captions_for("deepmimic_moonwalk")


def test_build_dataset_refuses_a_users_folder_and_missing_shared_data(tmp_path, capsys, monkeypatch):
    shared_data = tmp_path / "shared"
    shared_data.mkdir()
    (shared_data / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl").write_bytes(b"")  # only its name is read here
    built = []
    monkeypatch.setattr(build, "build_dataset", lambda config: built.append(config) or build.BuildReport())

    def builds(out, *extra: str) -> tuple[int, str]:
        code = engine_main(["build-dataset", "--out", str(out), *extra])
        return code, capsys.readouterr().err.strip()

    users = tmp_path / "HumanML3D"
    users.mkdir()
    (users / "train.txt").write_text("000001\n")
    code, err = builds(users, "--shared-data", str(shared_data))
    assert code == 2 and err.startswith(f"error: --out {users} holds files and is not a dataset this command built")
    assert "--overwrite" in err and "\n" not in err and not built
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code, err = builds(a_file, "--shared-data", str(shared_data))
    assert code == 2 and err == f"error: --out {a_file} is a file; give a folder (it is made if missing)"
    code, err = builds(tmp_path / "new", "--shared-data", str(tmp_path / "absent"))
    assert code == 2 and err.startswith(f"error: --shared-data {tmp_path / 'absent'} is not a folder")
    assert not built

    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = builds(empty, "--shared-data", str(empty))  # a folder without the AIST++ take: said, then built
    assert code == 0 and err == (
        f"warning: {empty} has no aistpp_gBR_sBM_*.pkl (an AIST++ take); the dataset is built without the kind "
        "aistpp_gBR_sBM"
    )
    code, err = builds(users, "--shared-data", str(shared_data), "--overwrite")
    assert code == 0 and err == ""
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / build.MARKER).write_text("")  # a build of this command (cut short): built again
    (tmp_path / "earlier" / "train.txt").write_text("")
    code, err = builds(tmp_path / "earlier", "--shared-data", str(shared_data))
    assert code == 0 and [config.out for config in built] == [empty, users, tmp_path / "earlier"]


def test_a_build_marks_its_folder(tmp_path, dataset):
    out, _ = dataset
    assert (out / build.MARKER).is_file() and build.out_problem(out, overwrite=False) is None
