"""`python -m engine generate` and `edit` as a user runs them, on the trained demo model."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from service_engine import ENGINE_PYTHON, ROOT, engine_env

from engine.cli import DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return DEFAULT_CHECKPOINT


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", *args], capture_output=True, text=True, env=engine_env(), cwd=ROOT, timeout=300
    )


def test_generate_numbered_bvh_files_with_progress(checkpoint, tmp_path):
    from retarget import bvh

    common = ["generate", "--prompt", "a person walks forward", "--frames", "40", "--samples", "2"]
    common += ["--out", str(tmp_path / "walk.bvh"), "--checkpoint", str(checkpoint), "--device", "cpu"]
    ((code, out, err, _),) = engine_batch([[*common, "--seed", "1"]], tmp_path)
    assert code == 0, err
    assert [f"scale {step}/10" in out for step in range(1, 11)] == [True] * 10
    for index in (1, 2):
        motion = bvh.read_bvh(tmp_path / f"walk_{index}.bvh")
        assert motion.positions.shape == (40, 22, 3) and np.isfinite(motion.positions).all()
    assert not (tmp_path / "walk.bvh").exists()
    # Run again: the takes are kept unless --overwrite says to replace them.
    takes = {index: (tmp_path / f"walk_{index}.bvh").read_bytes() for index in (1, 2)}
    refused, replaced = engine_batch([[*common, "--seed", "2"], [*common, "--seed", "2", "--overwrite"]], tmp_path)
    assert refused[0] == 2 and "add --overwrite" in refused[2] and refused[3], refused[2]
    assert replaced[0] == 0, replaced[2]
    assert all((tmp_path / f"walk_{index}.bvh").read_bytes() != takes[index] for index in (1, 2))


def test_generate_json_then_edit_npz(checkpoint, tmp_path):
    from retarget import motion as motion_module

    source, edited = tmp_path / "source.json", tmp_path / "edited.npz"
    model = ["--checkpoint", str(checkpoint), "--device", "cpu"]
    generated, edit = engine_batch(
        [
            ["generate", "--prompt", "a person jumps", "--seconds", "3", "--out", str(source), *model],
            [
                "edit",
                "--source",
                str(source),
                "--frames",
                "20:40",
                "--prompt",
                "a person kicks",
                "--out",
                str(edited),
                *model,
            ],
        ],
        tmp_path,
    )
    assert generated[0] == 0 and edit[0] == 0, (generated[2], edit[2])
    assert len(json.loads(source.read_text())["positions"]) == 60
    assert "scale 10/10" in edit[1]
    assert motion_module.CanonicalMotion.load(edited).positions.shape[1:] == (22, 3)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder of the files a user hands the CLI, good and bad; refused commands must leave it as it is."""
    from retarget import canonical

    folder = tmp_path_factory.mktemp("files")
    positions = canonical.rest_positions()[None].repeat(80, axis=0)
    positions[:, :, 2] += np.linspace(0.0, 3.0, 80)[:, None]  # a body sliding 3 m forward in 4 s
    walk = {"fps": 20, "positions": positions.tolist()}
    (folder / "walk.json").write_text(json.dumps(walk))
    (folder / "names.json").write_text(json.dumps({**walk, "joint_names": 5}))
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "rows.json").write_text(json.dumps([{"prompt": "a person walks", "seconds": 2}]))
    (folder / "text_row.json").write_text(json.dumps(["a person walks"]))
    (folder / "no_seconds.json").write_text(json.dumps([{"prompt": "a person walks"}]))
    (folder / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "take_2.bvh").write_text("the user's own take")
    (folder / "folder").mkdir()
    return folder


WALK = "--source {tmp}/walk.json"
LONG = "generate --prompt walk --seconds 12 --out {tmp}/x.bvh"  # longer than one window: the timeline path


REFUSED = [  # (command line, words its one-line error holds)
    ("generate --prompt walk --frames 42 --out {tmp}/x.npz", "multiple of 4"),
    ("generate --prompt walk --seconds -1 --out {tmp}/x.npz", "out of range"),
    ("generate --prompt walk --seconds 700 --out {tmp}/x.npz", "(0.0, 600.0]"),
    ("generate --prompt walk --seconds 3 --prompt run --out {tmp}/x.npz", "one length per prompt"),
    ("inbetween --prompt walk --source missing.npz --keys 0,8 --out {tmp}/x.npz", "missing.npz"),
    ("generate --prompt '' --out {tmp}/x.npz", "'prompt' is empty"),
    ("generate --prompt walk --out {tmp}/x.fbx", "must end in one of .npz, .bvh, .json"),
    ("edit --prompt walk --source missing.npz --frames 1:2 --out {tmp}/x.npz", "missing.npz"),
    # Output files: checked before the model loads, never replaced unless asked, never the source.
    ("generate --prompt walk --out {tmp}/folder", "--out {tmp}/folder is a folder"),
    ("generate --prompt walk --seconds 12 --out {tmp}/folder", "--out {tmp}/folder is a folder"),
    ("generate --prompt walk --out {tmp}/walk.json/x.bvh", "{tmp}/walk.json is a file, not a folder"),
    ("generate --prompt walk --out {tmp}/walk.json", "--out would replace {tmp}/walk.json; add --overwrite"),
    ("generate --prompt walk --samples 2 --out {tmp}/take.bvh", "--out would replace {tmp}/take_2.bvh"),
    (f"edit --prompt walk {WALK} --frames 0:40 --out {{tmp}}/walk.json --overwrite", "is the --source file"),
    (
        f"extend --prompt walk {WALK} --seconds 2 --out {{tmp}}/folder/../walk.json --overwrite",
        "is the --source file",
    ),
    # Files nested 100000 deep, a field of the wrong type.
    ("generate --timeline {tmp}/deep.json --out {tmp}/x.bvh", "--timeline {tmp}/deep.json nests 100000 levels"),
    ("edit --prompt walk --source {tmp}/deep.json --frames 0:4 --out {tmp}/x.bvh", "nests 100000 levels"),
    ("extend --prompt walk --source {tmp}/deep.json --seconds 2 --out {tmp}/x.bvh", "nests 100000 levels"),
    ("edit --prompt walk --source {tmp}/names.json --frames 0:4 --out {tmp}/x.bvh", "joint_names must be a list"),
    ("inbetween --prompt walk --source {tmp}/names.json --keys 0,40 --out {tmp}/x.bvh", "joint_names must be"),
    ("generate --timeline {tmp}/text_row.json --out {tmp}/x.bvh", "timeline row 1 is 'a person walks'"),
    ("generate --timeline {tmp}/no_seconds.json --out {tmp}/x.bvh", "timeline row 1: 'seconds' is missing"),
    # Values the model cannot run.
    ("generate --prompt walk --temperature 1e-40 --out {tmp}/x.bvh", "'temperature' is 1e-40"),
    ("generate --prompt walk --temperature 1e-300 --out {tmp}/x.bvh", "'temperature' is 1e-300"),
    (f"inbetween --prompt walk {WALK} --keys 10,13 --out {{tmp}}/x.bvh", "6 or more frames apart"),
    (f"inbetween --prompt walk {WALK} --keys 10,11 --out {{tmp}}/x.bvh", "'key_frames' [10, 11] leave no frame"),
    (f"inbetween --prompt walk {WALK} --keys a,b --out {{tmp}}/x.bvh", "--keys 'a,b' must be frame numbers"),
    (f"inbetween --prompt walk --prompt run {WALK} --keys 0,40 --out {{tmp}}/x.bvh", "give one --prompt"),
    (f"inbetween {WALK} --keys 0,40 --prompt {'a' * 1000} --out {{tmp}}/x.bvh", "1000 characters"),
    (f"inbetween {WALK} --keys 0,40 --prompt '\x07 \x1b' --out {{tmp}}/x.bvh", "'prompt' is empty"),
    (
        f"inbetween --prompt walk {WALK} --keys 0,40 --seed 99999999999999999999 --out {{tmp}}/x.bvh",
        "expected 0..2147483647",
    ),
    (
        f"extend --prompt walk {WALK} --seconds 2 --seed 99999999999999999999 --out {{tmp}}/x.bvh",
        "expected 0..2147483647",
    ),
    (f"{LONG} --seed 99999999999999999999", "'seed' is 99999999999999999999"),
    # The timeline path checks the sampling options as a single generate does, and refuses what it cannot do.
    (f"{LONG} --samples 2", "--samples 2: a timeline makes one motion"),
    (f"{LONG} --guidance -1", "'guidance' is -1.0"),
    (f"{LONG} --temperature 99", "'temperature' is 99.0"),
    (f"{LONG} --top-k 2", "'top_k' is 2.0"),
    (f"{LONG} --top-p 0", "'top_p' is 0.0"),
    ("generate --prompt walk --prompt run --frames 40 --out {tmp}/x.bvh", "--frames sets one window's length"),
    ("generate --timeline {tmp}/rows.json --prompt walk --out {tmp}/x.bvh", "drop --prompt and --seconds"),
    ("generate --prompt walk --checkpoint {tmp}/random.pt --out {tmp}/x.bvh", "is not a MoSa checkpoint"),
]


# Runs command lines through the real CLI (engine.__main__.main) one after another in one engine
# process, each with its exit code, output and whether the folder of files stayed as it was.
BATCH = """
import contextlib, io, json, sys
from pathlib import Path
from engine.__main__ import main

def contents(folder):
    return {str(path): path.read_bytes() for path in sorted(Path(folder).rglob("*")) if path.is_file()}

results = []
for argv in json.loads(sys.stdin.read()):
    before, out, err = contents(sys.argv[1]), io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's own refusals
            code = stop.code
    results.append([code, out.getvalue(), err.getvalue(), contents(sys.argv[1]) == before])
sys.stdout.write(json.dumps(results))
"""


def engine_batch(argvs: list[list[str]], folder: Path) -> list[list]:
    """[exit code, output, errors, whether `folder` stayed as it was] of each command line, run one
    after another in one engine process: a process each spends seconds starting Python and torch."""
    run = subprocess.run(
        [ENGINE_PYTHON, "-c", BATCH, str(folder)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        env=engine_env(),
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def refusals(files) -> dict[str, list]:
    """Every command line of REFUSED, run in one engine process."""
    argvs = [[arg.format(tmp=files) for arg in shlex.split(args)] for args, _ in REFUSED]
    return dict(zip([args for args, _ in REFUSED], engine_batch(argvs, files)))


@pytest.mark.parametrize("args, words", REFUSED)
def test_bad_arguments_exit_2_with_a_message(refusals, files, args, words):
    """One line, before the model loads (or as it fails to), and every file as it was."""
    code, out, err, files_unchanged = refusals[args]
    assert code == 2 and words.format(tmp=files) in err, err
    assert len(err.splitlines()) == 1 and "loaded" not in out, err
    assert "weights_only" not in err
    assert files_unchanged


def test_a_source_at_another_frame_rate_is_resampled_to_20_fps(checkpoint, files, tmp_path):
    """A 60 fps BVH was read as if at 20 fps (three times slower, its keys three times later): it is
    resampled, --keys count frames at 20 fps, and the frames outside the keys are the source's."""
    from retarget import bvh
    from retarget.motion import CanonicalMotion
    from retarget.resample import resample_motion

    walk = CanonicalMotion.from_dict(json.loads((files / "walk.json").read_text()))
    bvh.write_bvh(tmp_path / "walk60.bvh", resample_motion(walk, 60))
    out = tmp_path / "between.npz"
    run = engine(
        "inbetween",
        "--source",
        str(tmp_path / "walk60.bvh"),
        "--keys",
        "10,40",
        "--prompt",
        "a person hops",
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert "is at 60 fps: resampled to 20 fps (238 -> 80 frames)" in run.stdout
    motion = CanonicalMotion.load(out)
    assert motion.frames == 80 and motion.fps == 20
    outside = np.r_[0:10, 41:80]
    error = np.linalg.norm(motion.positions[outside] - walk.positions[outside], axis=-1)
    assert error.max() < 0.002, error.max()  # the BVH's own rounding: under 2 mm


def test_a_timeline_samples_with_the_options_given(checkpoint, files, tmp_path):
    """The timeline path passes the sampling options on (it ignored them): a one-row timeline's window
    is a plain generation, so with the same seed and options it is the single generate's motion."""
    from retarget.motion import CanonicalMotion

    options = ["--seed", "3", "--guidance", "0", "--temperature", "0.5", "--top-k", "0.5", "--top-p", "0.8"]
    options += ["--checkpoint", str(checkpoint), "--device", "cpu"]
    rows = ["--timeline", str(files / "rows.json")]
    single = ["--prompt", "a person walks", "--frames", "40"]
    runs = {"timeline": [*rows, *options], "single": [*single, *options], "plain": [*rows, *options[:2]]}
    argvs = [["generate", *args, "--out", str(tmp_path / f"{name}.npz")] for name, args in runs.items()]
    for code, _, errors, _ in engine_batch(argvs, tmp_path):
        assert code == 0, errors
    timeline, single, plain = (
        CanonicalMotion.load(tmp_path / f"{name}.npz").positions for name in ("timeline", "single", "plain")
    )
    np.testing.assert_allclose(timeline, single, atol=1e-5)
    assert not np.allclose(timeline, plain, atol=1e-2)  # the default options make another motion


def test_frame_span_mask():
    from engine.cli import frame_span_mask
    from engine.validation import RequestError

    assert frame_span_mask("2:4", 6) == [False, False, True, True, False, False]
    assert frame_span_mask(":2", 3) == [True, True, False]
    for bad in ("4:2", "0:7", "a:b", "3"):
        with pytest.raises(RequestError):
            frame_span_mask(bad, 6)


def test_a_failed_write_leaves_the_file_it_would_replace_as_it_was(tmp_path):
    """--overwrite used to write into the user's file itself: a failure halfway (a full disk, an
    error, Ctrl+C) left it cut short. Now the new file is written beside it and replaces it whole."""
    from engine.cli import write_atomically

    kept = tmp_path / "walk.bvh"
    kept.write_text("the animator's file")

    def write_half_then_fail(part: Path) -> None:
        part.write_text("HIERARCHY\nROOT Hips")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(kept, write_half_then_fail)
    assert kept.read_text() == "the animator's file" and sorted(tmp_path.iterdir()) == [kept]
    kept.chmod(0o600)  # the animator's private file stays private
    write_atomically(kept, lambda part: part.write_text("a new motion"))
    assert kept.read_text() == "a new motion" and sorted(tmp_path.iterdir()) == [kept]
    assert kept.stat().st_mode & 0o777 == 0o600
    link = tmp_path / "latest.bvh"
    link.symlink_to(kept)
    write_atomically(link, lambda part: part.write_text("through the link"))
    assert link.is_symlink() and kept.read_text() == "through the link"
