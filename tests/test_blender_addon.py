"""The built extension in real bpy: installed from the zip into a temporary repository, its
operators and panel registered, baking with foreach_set, Regenerate Range's key copying and
seams, stored motion across save and reload, undo, and the clear messages for bad input."""

from __future__ import annotations

import http.server
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

# Blender reads its user folders once, at import: point them into a temporary folder first so
# the tests never touch the real user configuration.
_USER_ROOT = tempfile.mkdtemp(prefix="mosa-blender-user-")
os.environ.setdefault("BLENDER_USER_RESOURCES", _USER_ROOT)

import bpy  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import ROOT  # noqa: E402

from retarget import rotations  # noqa: E402
from tests import rigify_human  # noqa: E402

pytestmark = pytest.mark.blender

BONES = ("hips", "spine", "thigh.L", "shin.L")


@pytest.fixture(scope="module")
def addon(tmp_path_factory):
    """Build the zip with build.py and install it the way a user does (Install from Disk)."""
    if not bpy.utils.resource_path("USER").startswith(os.environ["BLENDER_USER_RESOURCES"]):
        pytest.skip("bpy was imported before this module could redirect Blender's user folders")
    build = subprocess.run([sys.executable, str(ROOT / "build.py"), "extension"], capture_output=True, text=True)
    if "build.py setup" in build.stderr or build.returncode != 0:
        raise AssertionError(f"build.py extension failed:\n{build.stdout}\n{build.stderr}")
    archive = next((ROOT / "dist").glob("mosa-*.zip"))
    repo_dir = tmp_path_factory.mktemp("extensions")
    bpy.ops.preferences.extension_repo_add(
        name="mosa_tests", type="LOCAL", use_custom_directory=True, custom_directory=str(repo_dir)
    )
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.custom_directory == str(repo_dir))
    assert bpy.ops.extensions.package_install_files(
        filepath=str(archive), repo=repo.module, enable_on_install=True
    ) == {"FINISHED"}
    package = f"bl_ext.{repo.module}.mosa"
    yield sys.modules[package], repo_dir / "mosa"
    bpy.ops.extensions.package_uninstall(
        repo_index=list(bpy.context.preferences.extensions.repos).index(repo), pkg_id="mosa"
    )


def new_armature(name: str, bones: list[tuple[str, tuple, tuple, str | None]]) -> bpy.types.Object:
    """A fresh file holding one armature (bones as name, head, tail, parent name), active."""
    bpy.ops.wm.read_homefile(use_empty=True)
    armature = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, armature)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for bone_name, head, tail, parent in bones:
        bone = armature.edit_bones.new(bone_name)
        bone.head, bone.tail = head, tail
        bone.parent = armature.edit_bones[parent] if parent else None
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


@pytest.fixture
def rig():
    """A small chain of four bones, straight up."""
    return new_armature(
        "rig",
        [
            (name, (0, 0, number * 0.3), (0, 0, number * 0.3 + 0.3), BONES[number - 1] if number else None)
            for number, name in enumerate(BONES)
        ],
    )


def wavy_tracks(addon_module, frames: np.ndarray, phase: float):
    """Smooth made-up motion: every bone swings about x, the hips travel forward."""
    angle = 0.3 * np.sin(frames / 6.0 + phase)
    quats = rotations.from_axis_angle(np.stack([angle, 0 * angle, 0 * angle], axis=1))
    locations = np.stack([0 * frames, 0.05 * frames + phase, 0 * frames], axis=1)
    return addon_module.tracks.PoseTracks(
        frames=frames, rotations={bone: quats for bone in BONES}, locations={"hips": locations}
    )


def wavy_tracks_on(addon_module, obj, frames: np.ndarray):
    """wavy_tracks' swing on some of a rig's own bones (the first four with children)."""
    bones = [bone.name for bone in obj.data.bones if bone.children][:4]
    tracks = wavy_tracks(addon_module, frames, phase=0.5)
    return addon_module.tracks.PoseTracks(
        frames=frames,
        rotations={b: tracks.rotations["hips"] for b in bones},
        locations={bones[0]: tracks.locations["hips"]},
    )


def keys_of(action, obj, fcurves_for) -> dict:
    return {
        (fcurve.data_path, fcurve.array_index): np.array([tuple(p.co) for p in fcurve.keyframe_points])
        for fcurve in fcurves_for(action, obj)
    }


def test_zip_layout_and_installed_package(addon):
    package, installed = addon
    assert (installed / "blender_manifest.toml").is_file()
    assert (installed / "retarget" / "rotations.py").is_file() and (installed / "engine" / "__main__.py").is_file()
    assert not list(installed.rglob("*.pyc"))
    assert package.spans.rotations.__name__ == f"{package.__name__}.retarget.rotations"  # the vendored copy
    assert {
        "generate",
        "regenerate_range",
        "bake",
        "cancel",
        "save_mapping",
        "load_mapping",
        "engine_start",
        "engine_stop",
        "setup_engine",
        "import_official",
    } <= set(dir(bpy.ops.mosa))
    assert hasattr(bpy.types, "MOSA_PT_main")


def test_operators_explain_why_not(addon, rig):
    bpy.context.view_layer.objects.active = None
    assert not bpy.ops.mosa.generate.poll()
    with pytest.raises(RuntimeError, match="Select an armature"):
        bpy.ops.mosa.generate(synchronous=True)
    bpy.context.view_layer.objects.active = rig
    bpy.context.scene.mosa.prompt = "   "
    with pytest.raises(RuntimeError, match="Type a prompt first"):
        bpy.ops.mosa.generate(synchronous=True)
    with pytest.raises(RuntimeError, match="no action to edit"):
        bpy.ops.mosa.regenerate_range(synchronous=True)


def test_nla_tweak_mode_is_refused_and_a_bug_while_writing_is_reported_and_undone(addon, rig, caplog):
    """In tweak mode the rig's action cannot be assigned: the job operators say so before any
    work. A failure of any kind in the Blender-side work ends the job with a message and takes
    back what it made, so the job is not left running with every button greyed out."""
    package, _ = addon
    fcurves_for = package.action_compat.fcurves_for
    action = bpy.data.actions.new("walk cycle")
    rig.animation_data_create()
    rig.animation_data.action = action
    rig.pose.bones["spine"].rotation_mode = "QUATERNION"
    for frame in (1, 20):
        rig.pose.bones["spine"].keyframe_insert("rotation_quaternion", frame=frame)
    rig.animation_data.nla_tracks.new().strips.new("walk cycle", 1, action).select = True
    rig.animation_data.action = None
    rig.animation_data.use_tweak_mode = True
    bpy.context.scene.mosa.prompt = "a person walks"
    with pytest.raises(RuntimeError, match="NLA tweak mode: leave it first"):
        bpy.ops.mosa.generate(synchronous=True)
    rig.animation_data.use_tweak_mode = False
    rig.animation_data.action = action
    before = scene_state(rig, fcurves_for)

    def made_an_action_then_failed():
        rig.animation_data.action = bpy.data.actions.new("half made")
        yield 0.5
        raise KeyError("no such bone")

    writing = package.operators.Writing(rig, made_an_action_then_failed())
    with caplog.at_level(logging.ERROR):
        assert not writing.step() and writing.step()
    assert writing.error.startswith("unexpected error (KeyError") and "console" in writing.error
    assert "Traceback" in caplog.text and "no such bone" in caplog.text
    assert_same_scene(before, scene_state(rig, fcurves_for))


def test_a_rig_linked_from_a_library_is_refused_until_it_is_overridden(addon, rig, tmp_path):
    """Keys written to a linked rig are lost on save; the job operators say so before any work."""
    library = tmp_path / "characters.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(library))
    bpy.ops.wm.read_homefile(use_empty=True)
    with bpy.data.libraries.load(str(library), link=True) as (_, linked):
        linked.objects = ["rig"]
    obj = linked.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.mosa.prompt = "a person walks"
    with pytest.raises(RuntimeError, match="linked from a library: make a library override first"):
        bpy.ops.mosa.generate(synchronous=True)
    bpy.context.view_layer.objects.active = obj.override_create(remap_local_usages=True)
    with pytest.raises(
        RuntimeError, match="do not map onto the human skeleton"
    ):  # past the poll: this rig's own problem
        bpy.ops.mosa.generate(synchronous=True)


def test_bake_writes_one_key_per_frame_with_the_values(addon, rig):
    package, _ = addon
    frames = np.arange(1, 81, dtype=float)
    tracks = wavy_tracks(package, frames, phase=0.0)
    action = bpy.data.actions.new("baked")
    package.baking.bake_tracks(action, rig, tracks)
    keys = keys_of(action, rig, package.action_compat.fcurves_for)
    assert len(keys) == len(BONES) * 4 + 3
    rotation = keys[('pose.bones["spine"].rotation_quaternion', 1)]
    np.testing.assert_array_equal(rotation[:, 0], frames)
    np.testing.assert_allclose(rotation[:, 1], tracks.rotations["spine"][:, 1], atol=1e-6)
    bpy.context.scene.frame_set(40)
    np.testing.assert_allclose(rig.pose.bones["hips"].location, tracks.locations["hips"][39], atol=1e-5)


def regenerate_wavy(package, rig, span: tuple[int, int]):
    """A wavy source action on frames 1..120, its keys, and a copy with `span` regenerated from
    the same waves a phase later."""
    frames = np.arange(1, 121, dtype=float)
    source = bpy.data.actions.new("source")
    package.baking.bake_tracks(source, rig, wavy_tracks(package, frames, phase=0.0))
    before = keys_of(source, rig, package.action_compat.fcurves_for)
    edited = package.operators.regenerate_span(source, rig, wavy_tracks(package, frames, phase=1.0), span, 4)
    return frames, source, before, edited


def test_regenerated_span_keeps_outside_keys_and_has_smooth_seams(addon, rig):
    package, _ = addon
    fcurves_for = package.action_compat.fcurves_for
    frames, source, before, edited = regenerate_wavy(package, rig, (40, 80))

    assert keys_of(source, rig, fcurves_for).keys() == before.keys()
    for channel, source_keys in keys_of(source, rig, fcurves_for).items():
        np.testing.assert_array_equal(source_keys, before[channel])  # the source is untouched
    after = keys_of(edited, rig, fcurves_for)
    outside = (frames < 40) | (frames > 80)
    for channel, source_keys in before.items():
        np.testing.assert_array_equal(after[channel][outside], source_keys[outside])  # bit for bit
        np.testing.assert_array_equal(after[channel][:, 0], frames)
    spine = [('pose.bones["spine"].rotation_quaternion', i) for i in range(4)]
    new_q, old_q = (np.stack([keys[c][:, 1] for c in spine], axis=1) for keys in (after, before))
    assert rotations.angle_between(new_q[45:75], old_q[45:75]).max() > 0.1  # the span did change
    steps = rotations.angle_between(new_q[1:], new_q[:-1])
    largest_source_step = rotations.angle_between(old_q[1:], old_q[:-1]).max()
    assert steps[38] <= largest_source_step + 1e-6 and steps[79] <= largest_source_step + 1e-6  # both seams
    new_steps = rotations.angle_between(new_q[1:], new_q[:-1])
    largest_new_step = max(rotations.angle_between(a[1:], a[:-1]).max() for a in (old_q, new_q))
    assert new_steps.max() <= 1.5 * largest_new_step  # and no lurch inside the blends either


def test_a_one_frame_span_is_regenerated(addon, rig):
    """The smallest span, one frame: spliced in (it changes), every other key kept bit for bit."""
    package, _ = addon
    frames, _, before, edited = regenerate_wavy(package, rig, (40, 40))
    after = keys_of(edited, rig, package.action_compat.fcurves_for)
    assert_outside_kept_and_span_changed(before, after, (40, 40))
    for keys in after.values():
        np.testing.assert_array_equal(keys[:, 0], frames)


def test_variations_compared_on_nla_tracks_play_one_after_another_and_one_is_kept(addon, rig):
    """Variations on NLA tracks of their own, strips one after another, with no active action to
    mask them: playing shows each in turn. Use Take keeps the chosen one; the hand-keyed action
    they replaced sits on a muted "[Action Stash]" track and every variation stays a take."""
    package, _ = addon
    original = bpy.data.actions.new("keyed by hand")
    package.baking.bake_tracks(original, rig, wavy_tracks(package, np.arange(1, 21, dtype=float), 5.0))
    package.takes.keep_replaced(rig, original)
    actions, variations = [], []
    for seed, length in ((0, 30), (1, 50)):
        action = bpy.data.actions.new(package.tracks.action_name("a person waves", seed))
        variations.append(wavy_tracks(package, np.arange(1, length + 1, dtype=float), seed))
        package.baking.bake_tracks(action, rig, variations[-1])
        package.takes.add_take(rig, action)
        actions.append(action)
    package.takes.compare_on_tracks(rig, actions, start_frame=10)
    assert rig.animation_data.action is None
    strips = [track.strips[0] for track in package.takes.comparison_tracks(rig)]
    assert [strip.action for strip in strips] == actions
    assert [(strip.frame_start, strip.frame_end) for strip in strips] == [(10, 39), (40, 89)]
    for frame, variation, key in ((20, 0, 10), (60, 1, 20)):  # what plays is each variation in turn
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(
            rig.pose.bones["hips"].location, variations[variation].locations["hips"][key], atol=1e-5
        )
    stash = [track for track in rig.animation_data.nla_tracks if track.name == "[Action Stash]"]
    assert len(stash) == 1 and stash[0].mute and stash[0].strips[0].action == original

    listed = [take.action for take in rig.mosa_takes.items]
    assert listed == [original, *actions]
    assert bpy.ops.mosa.use_take(index=2) == {"FINISHED"}  # the second variation is kept
    assert rig.animation_data.action == actions[1] and not package.takes.comparison_tracks(rig)
    assert all(action.users for action in bpy.data.actions) and actions[0].use_fake_user
    assert len(rig.animation_data.nla_tracks) == 1  # the stash alone


def test_range_comes_from_the_preview_range_or_the_selected_keys(addon, rig):
    package, _ = addon
    action = bpy.data.actions.new("keys")
    package.baking.bake_tracks(action, rig, wavy_tracks(package, np.arange(1, 101, dtype=float), 0.0))
    for fcurve in package.action_compat.fcurves_for(action, rig):
        for point in fcurve.keyframe_points:
            point.select_control_point = 30 <= point.co[0] <= 55
    scene = bpy.context.scene
    assert bpy.ops.mosa.use_preview_range() == {"FINISHED"}
    assert (scene.mosa.range_start, scene.mosa.range_end) == (30, 55)
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 40, 80
    bpy.ops.mosa.use_preview_range()
    assert (scene.mosa.range_start, scene.mosa.range_end) == (40, 80)


def test_stored_motion_survives_save_and_reload(addon, rig, tmp_path):
    package, _ = addon
    action = bpy.data.actions.new(package.tracks.action_name("a person walks", 3))
    package.baking.bake_tracks(action, rig, wavy_tracks(package, np.arange(1, 21, dtype=float), 0.0))
    positions = np.random.default_rng(0).normal(size=(20, 22, 3)).astype(np.float32)
    motion = {
        "fps": 20,
        "joint_names": [f"j{i}" for i in range(22)],
        "positions": positions,
        "rotations": np.tile([1.0, 0, 0, 0], (20, 22, 1)),
    }
    package.operators._store(action, rig, motion, "a person walks", 3, "demo")
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    reloaded = bpy.data.actions["MoSa: a person walks (seed 3)"]
    assert reloaded["mosa"]["prompt"] == "a person walks" and reloaded["mosa"]["seed"] == 3
    np.testing.assert_array_equal(
        package.vendored.packed.decode_motion(reloaded["mosa"]["motion"])["positions"], positions
    )
    assert len(package.action_compat.fcurves_for(reloaded, bpy.data.objects["rig"])) == len(BONES) * 4 + 3
    assert package.operators.stored_motion_is_keyed(reloaded, bpy.data.objects["rig"])  # the keys' digest too


def test_the_sessions_engine_status_and_jobs_are_not_saved_in_the_blend(addon, rig, tmp_path):
    """They lived on the scene: a file reopened elsewhere showed a dead engine's status and job ids."""
    session = bpy.context.window_manager.mosa_session
    session.status, session.jobs.add().job_id = "running (40%) in another session", "1-job-of-another-session"
    bpy.context.scene.mosa.prompt = "a prompt is the scene's and is saved"
    path = tmp_path / "saved.blend"
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=False)
    finally:
        session.jobs.clear()
    saved = path.read_bytes()
    assert b"a prompt is the scene's and is saved" in saved  # the search finds what is there
    assert b"another session" not in saved and b"1-job-of-another-session" not in saved


def test_mapping_saves_loads_and_undoes(addon, rig, tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(
        json.dumps(
            {
                "family": "studio",
                "bones": {"Hips": "hips", "Spine": "spine", "LeftUpLeg": "thigh.L", "LeftLeg": "no_such_bone"},
            }
        )
    )
    bpy.ops.ed.undo_push(message="before loading")
    bpy.ops.mosa.load_mapping("EXEC_DEFAULT", True, filepath=str(path))  # True: push its undo step, as the UI does
    mapping = bpy.context.active_object.data.mosa_mapping
    bones = {pair.joint: pair.bone for pair in mapping.pairs}
    assert mapping.family == "studio" and len(bones) == 22
    mapped = {joint: bone for joint, bone in bones.items() if bone}
    assert mapped == {"Hips": "hips", "Spine": "spine", "LeftUpLeg": "thigh.L"}  # the missing bone stays unmapped

    saved = tmp_path / "saved.json"
    bpy.ops.mosa.save_mapping(filepath=str(saved))
    assert {joint: bone for joint, bone in json.loads(saved.read_text())["bones"].items() if bone} == mapped

    bpy.ops.ed.undo()
    assert len(bpy.data.objects["rig"].data.mosa_mapping.pairs) == 0  # one undo step took it all back

    path.write_text(json.dumps({"bones": {"Tail": "hips"}}))
    with pytest.raises(RuntimeError, match="joints the canonical skeleton lacks: \\['Tail'\\]"):
        bpy.ops.mosa.load_mapping(filepath=str(path))


def test_engine_setup_commands_and_log_live_in_the_user_folder(addon):
    package, _ = addon
    user_dir = package.preferences.user_dir()
    assert str(user_dir).startswith(os.environ["BLENDER_USER_RESOURCES"])
    commands = package.engine_setup.setup_commands("/usr/bin/python3", user_dir)
    python = str(package.engine_setup.venv_python(user_dir))
    assert commands[0] == ["/usr/bin/python3", "-m", "venv", str(user_dir / "engine-venv")]
    assert commands[-1][:5] == [python, "-m", "pip", "install", "-r"]
    assert Path(commands[-1][5]).read_text().count("torch") == 1  # the shipped requirements file
    assert package.engine_setup.setup_log(user_dir).parent == user_dir
    assert package.preferences.get(bpy.context).resolved_python() == python  # the default engine Python
    with pytest.raises(ValueError, match="no Python to build"):
        package.engine_setup.setup_commands("", user_dir)
    assert package.engine_ops.import_official_command(python, "/x/MoSa.zip", "/y/official.pt") == [
        python,
        "-m",
        "engine",
        "import-official",
        "/x/MoSa.zip",
        "--out",
        "/y/official.pt",
        "--overwrite",
    ]
    with pytest.raises(RuntimeError, match="No such file.*pick the official MoSa.zip"):
        bpy.ops.mosa.import_official(filepath=str(user_dir / "missing.zip"))


@pytest.fixture(scope="module")
def engine(addon, tmp_path_factory):
    """The installed extension's own engine (engine/ inside the zip) on a random-weight model."""
    from service_engine import ENGINE_PYTHON, engine_env

    package, _ = addon
    # Made by the engine's Python: on the 4.5 LTS run this process has no torch.
    checkpoint = tmp_path_factory.mktemp("model") / "random-demo.pt"
    made = subprocess.run(
        [
            ENGINE_PYTHON,
            "-c",
            "import sys; from engine import checkpoint; checkpoint.create_random(sys.argv[1], preset='demo')",
            str(checkpoint),
        ],
        capture_output=True,
        text=True,
        env=engine_env(),
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    prefs = package.preferences.get(bpy.context)
    prefs.engine_python, prefs.checkpoint, prefs.device = ENGINE_PYTHON, str(checkpoint), "cpu"
    client, news = package.engine_session.connect(prefs, package.preferences.user_dir())
    assert news.startswith("started the engine")
    yield package, client
    package.engine_session.stop()


def live_client(package):
    """The client of the engine running now: a test before this one may have killed the fixture's
    engine (and a later connect restarted it on another port)."""
    return package.engine_session.connect(package.preferences.get(bpy.context), package.preferences.user_dir())[0]


def run_to_end(run, timeout_s: float = 120.0):
    """Loop the one step the modal operator runs on each timer tick."""
    deadline = time.monotonic() + timeout_s
    while not run.step():
        assert time.monotonic() < deadline, f"job {run.job_id} still {run.state} after {timeout_s} s"
        time.sleep(0.05)
    return run


def test_job_steps_bring_back_motion_and_cancel_stops_a_job(engine):
    package, client = engine
    done = run_to_end(package.operators.JobRun(client, client.generate("a person walks forward", seconds=2, seed=1)))
    assert done.state == "done" and done.progress == 1.0
    assert np.asarray(done.result[0]["positions"]).shape == (40, 22, 3)
    cancelled = package.operators.JobRun(client, client.generate("a person dances", seconds=9.8, seed=2))
    cancelled.cancel()
    assert run_to_end(cancelled).state == "cancelled"


def test_a_killed_engine_is_reported_and_restarted(engine, rig):
    package, client = engine
    run = package.operators.JobRun(client, client.generate("a person jumps", seconds=9.8, seed=3))
    os.kill(package.engine_session._process.pid, signal.SIGKILL)
    assert run_to_end(run).state == "failed" and "stopped answering" in run.error
    client, news = package.engine_session.connect(package.preferences.get(bpy.context), package.preferences.user_dir())
    assert "restarted" in news
    assert run_to_end(package.operators.JobRun(client, client.generate("a person waves", seconds=2))).state == "done"


def test_an_engine_that_cannot_start_gives_a_clear_report(addon, tmp_path):
    from service_engine import ENGINE_PYTHON

    package, _ = addon
    prefs = package.preferences.get(bpy.context)
    saved = prefs.engine_python, prefs.checkpoint
    prefs.engine_python, prefs.checkpoint = ENGINE_PYTHON, str(tmp_path / "missing.pt")
    try:
        with pytest.raises(RuntimeError, match="MoSa engine unavailable: the engine did not start"):
            bpy.ops.mosa.engine_start()
    finally:
        prefs.engine_python, prefs.checkpoint = saved
        package.engine_session.stop()


def test_enabling_the_addon_starts_the_engine_and_the_model_is_loaded_before_any_generate(engine):
    """What runs on the timer after the add-on is enabled (or its panel first draws): the engine
    starts on a thread, the call returns before the engine is up, the model loads without any job,
    and the first Generate runs on that engine (no second start)."""
    package, _ = engine
    package.engine_session.stop()
    thread = package.engine_autostart.start(bpy.context)
    assert thread.is_alive() and package.engine_session.readiness == "starting"  # returned at once
    thread.join(timeout=180)
    assert package.engine_session.readiness.startswith("ready: "), package.engine_session.readiness
    process = package.engine_session._process
    health = process.client().health()
    assert health["ready"] and health["model"] and sum(health["jobs"].values()) == 0  # loaded, no job asked
    mixamo_rig()
    bpy.context.scene.mosa.prompt, bpy.context.scene.mosa.seconds = "a person walks forward", 2.0
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    assert package.engine_session._process is process and process.client().health()["jobs"]["done"] == 1


def test_no_early_start_for_a_remote_engine_with_the_preference_off_or_in_background(engine):
    """The preferences are obeyed (no local process), and enabling the add-on in background mode
    starts nothing, while disabling it stops an engine even halfway through its early start."""
    package, _ = engine
    prefs = package.preferences.get(bpy.context)
    package.engine_session.stop()
    try:
        prefs.start_engine_early = False
        assert package.engine_autostart.start(bpy.context) is None
        prefs.start_engine_early, prefs.engine_mode = True, "REMOTE"
        assert package.engine_autostart.start(bpy.context) is None
    finally:
        prefs.start_engine_early, prefs.engine_mode = True, "LOCAL"
    assert package.engine_session._process is None
    kept = {name: getattr(prefs, name) for name in ("engine_python", "checkpoint", "device")}
    thread = package.engine_autostart.start(bpy.context)
    bpy.ops.preferences.addon_disable(module=package.__name__)  # at once, while the engine starts
    thread.join(timeout=180)
    assert package.engine_session._process is None and not list(package.preferences.user_dir().glob("engine*.json"))
    bpy.ops.preferences.addon_enable(module=package.__name__)
    assert hasattr(bpy.types, "MOSA_PT_main") and package.engine_session._process is None
    for name, value in kept.items():  # the preferences went with the disabled add-on
        setattr(package.preferences.get(bpy.context), name, value)


class NotAnEngine(http.server.BaseHTTPRequestHandler):
    """A server at the remote URL that is not a MoSa engine: every request gets `body` (bytes)."""

    body = b"{}"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    "body, said, checked",
    [
        (b'{"id": "1", "service": "something else"}', "not a MoSa job", "not a MoSa health"),  # JSON, then no state
        (b"<!DOCTYPE html><html>Directory listing</html>", *["does not answer as a MoSa engine does"] * 2),
    ],
)
def test_a_remote_address_that_is_not_a_mosa_engine_is_said_and_frees_the_buttons(addon, body, said, checked):
    """Such an answer used to end in a KeyError traceback, with the job never ended: every MoSa
    button stayed greyed out ("A MoSa job is running") until Blender restarted. Start Engine (a
    check of a remote one) gave a traceback too."""
    package, _ = addon
    prefs = package.preferences.get(bpy.context)
    mixamo_rig()
    bpy.context.scene.mosa.prompt = "a person walks forward"
    handler = type("Answer", (NotAnEngine,), {"body": body})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        prefs.engine_mode, prefs.remote_url = "REMOTE", f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with pytest.raises(RuntimeError, match=said):
                bpy.ops.mosa.generate(synchronous=True)
            assert package.operators._active_run is None and bpy.ops.mosa.generate.poll()
            assert not bpy.data.actions
            with pytest.raises(RuntimeError, match=checked):
                bpy.ops.mosa.engine_start()
        finally:
            prefs.engine_mode = "LOCAL"
            server.shutdown()


def test_an_engine_python_that_is_not_there_says_to_run_set_up_engine(addon, tmp_path):
    """A new user's first clicks (Set Up Engine not run yet): Generate said only "[Errno 2] No such
    file or directory", Import Official Checkpoint gave a FileNotFoundError traceback."""
    package, _ = addon
    prefs = package.preferences.get(bpy.context)
    kept, prefs.engine_python = prefs.engine_python, str(tmp_path / "engine-venv" / "bin" / "python")
    mixamo_rig()
    bpy.context.scene.mosa.prompt = "a person walks forward"
    release = tmp_path / "MoSa.zip"
    release.write_bytes(b"PK")  # a file is there: the Python is what is missing
    try:
        for run in (lambda: bpy.ops.mosa.generate(), lambda: bpy.ops.mosa.import_official(filepath=str(release))):
            with pytest.raises(
                RuntimeError,
                match="engine-venv/bin/python does not exist: run Set Up Engine",
            ):
                run()
    finally:
        prefs.engine_python = kept
    assert not bpy.data.actions and prefs.checkpoint != str(package.preferences.user_dir() / "official.pt")


@pytest.mark.parametrize("url", ["http://127.0.0.1:0", "http://127.0.0.1:70000", "gpu-box:8765", "not a url"])
def test_a_remote_url_that_names_no_engine_is_refused_in_words(addon, url):
    """requests took port 0 for 80 and 'gpu-box:8765' for a URL scheme, and said so in its own terms."""
    package, _ = addon
    prefs = package.preferences.get(bpy.context)
    mixamo_rig()
    bpy.context.scene.mosa.prompt = "a person walks forward"
    prefs.engine_mode, prefs.remote_url = "REMOTE", url
    try:
        for operator in (bpy.ops.mosa.generate, bpy.ops.mosa.engine_start):
            with pytest.raises(RuntimeError, match="is not an address like http://gpu-box:8765"):
                operator()
    finally:
        prefs.engine_mode = "LOCAL"


def mixamo_rig(prefix: str = "mixamorig:"):
    """A Mixamo-named armature on the canonical rest pose (Blender: Z up, facing -Y)."""
    from retarget import canonical

    rest = canonical.rest_positions() + [0.0, 0.95, 0.0]
    heads = np.stack([rest[:, 0], -rest[:, 2], rest[:, 1]], axis=1)
    names = [prefix + name.replace("Toe", "ToeBase") for name in canonical.JOINT_NAMES]
    bones = []
    for joint, name in enumerate(names):
        children = np.flatnonzero(canonical.PARENTS == joint)
        tail = heads[children[0]] if len(children) else heads[joint] + [0, 0, 0.08]
        parent = names[canonical.PARENTS[joint]] if canonical.PARENTS[joint] >= 0 else None
        bones.append((name, tuple(heads[joint]), tuple(tail), parent))
    return new_armature("mixamo", bones)


def rigify_rig(rigify_file: Path) -> bpy.types.Object:
    """A fresh file holding Rigify's human metarig (hidden) generated into a full control rig
    (DEF/ORG/MCH and controls), the rig active."""
    bpy.ops.wm.read_homefile(use_empty=True)
    return rigify_human.append(rigify_file)[1]


def assert_outside_kept_and_span_changed(before: dict, after: dict, span: tuple[int, int]) -> None:
    """Every key outside the span equals the source's bit for bit; some key inside differs."""
    assert after.keys() >= before.keys()
    changed = False
    for channel, source_keys in before.items():
        outside = (source_keys[:, 0] < span[0]) | (source_keys[:, 0] > span[1])
        np.testing.assert_array_equal(after[channel][outside], source_keys[outside])
        changed |= not np.allclose(after[channel][~outside], source_keys[~outside])
    assert changed, f"nothing changed inside frames {span[0]}..{span[1]}"


def keyed_quaternions(keys: dict, path: str) -> np.ndarray:
    """A bone's rotation keys (quaternion, Euler of any order, or axis-angle) as quaternions over its key frames."""
    bone = path.split('"')[1]
    mode = bpy.context.active_object.pose.bones[bone].rotation_mode
    values = np.stack([keys[(path, i)][:, 1] for i in range(3 if path.endswith("rotation_euler") else 4)], axis=1)
    if path.endswith("rotation_euler"):
        return rotations.from_blender_euler(values, mode)
    return rotations.from_blender_axis_angle(values) if path.endswith("rotation_axis_angle") else values


def assert_smooth_seams(before: dict, after: dict, span: tuple[int, int]) -> None:
    """Every bone's rotation step into and out of the span is no larger than the largest
    frame-to-frame rotation change anywhere in the source."""
    seam_steps, largest_in_source = {}, 0.0
    for bone, path in {(path.split('"')[1], path) for path, _ in before if ".rotation_" in path}:
        old_q, new_q = (keyed_quaternions(k, path) for k in (before, after))
        frames = before[(path, 0)][:, 0]
        seams = [np.flatnonzero(frames == span[0])[0] - 1, np.flatnonzero(frames == span[1])[0]]
        seam_steps[bone] = rotations.angle_between(new_q[1:], new_q[:-1])[seams]
        largest_in_source = max(largest_in_source, rotations.angle_between(old_q[1:], old_q[:-1]).max())
    for bone, steps in seam_steps.items():
        assert steps.max() <= largest_in_source + 1e-4, f"{bone} jumps at a seam: {steps} > {largest_in_source}"


@pytest.mark.parametrize("rig_kind", ["mixamo_rig", "rigify_rig"])
def test_generate_then_regenerate_a_range_end_to_end(engine, rig_kind, request, tmp_path):
    package, _ = engine
    fcurves_for = package.action_compat.fcurves_for
    obj = mixamo_rig() if rig_kind == "mixamo_rig" else rigify_rig(request.getfixturevalue("rigify_file"))
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 30, 11
    scene.mosa.prompt, scene.mosa.seconds, scene.mosa.seed = "a person walks forward", 4.0, 3
    scene.mosa.variations, scene.mosa.place_variations = 2, "NLA"
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    assert obj.animation_data.action is None  # the variations play on their NLA tracks, nothing masks them
    assert [take.action.name for take in obj.mosa_takes.items] == [
        "MoSa: a person walks forward (seed 3)",
        "MoSa: a person walks forward (seed 4)",
    ]
    assert bpy.ops.mosa.use_take(index=0) == {"FINISHED"}  # the first is kept
    source = obj.animation_data.action
    assert source.name == "MoSa: a person walks forward (seed 3)" and not package.takes.comparison_tracks(obj)
    strips = [track.strips[0] for track in obj.animation_data.nla_tracks]
    assert not strips and source.use_fake_user and obj.mosa_takes.items[1].action.use_fake_user
    keys = keys_of(source, obj, fcurves_for)
    first, last = min(k[0, 0] for k in keys.values()), max(k[-1, 0] for k in keys.values())
    assert first == 11 and abs(last - (11 + 79 / 20 * 30)) <= 1  # from the current frame: 80 frames at 20 fps, at 30
    mapped = {pair.bone for pair in obj.data.mosa_mapping.pairs if pair.bone}
    assert len(mapped) >= 14 and mapped <= {path.split('"')[1] for path, _ in keys}  # every mapped bone is keyed
    motion_keys = [k for (path, _), k in keys.items() if path.endswith(("rotation_quaternion", "location"))]
    assert all(len(k) == len(motion_keys[0]) for k in motion_keys)  # one key per scene frame on each
    assert source["mosa"]["seed"] == 3 and source["mosa"]["model"]  # the model's name, known once it has loaded
    assert obj.mosa_takes.items[1].action["mosa"]["seed"] == 4  # the second variation: an action of its own
    # What the body follows moves with the keys and keeps its shape: no deforming bone stretches
    # (a Rigify rig's limbs are switched to FK in the action, so its IK targets do not pull them).
    deform = [bone.name for bone in obj.data.bones if bone.use_deform]
    rest = np.array([obj.data.bones[name].length for name in deform])
    for frame in (11, 60, 100, 129):
        scene.frame_set(frame)
        posed = np.array([(obj.pose.bones[name].tail - obj.pose.bones[name].head).length for name in deform])
        np.testing.assert_allclose(posed / rest, 1.0, atol=0.01, err_msg=f"frame {frame}")

    scene.mosa.prompt, scene.mosa.range_start, scene.mosa.range_end = "a person jumps", 40, 80
    scene.mosa.variations = 1
    bpy.ops.ed.undo_push(message="before the edit")
    assert bpy.ops.mosa.regenerate_range("EXEC_DEFAULT", True, synchronous=True) == {"FINISHED"}
    edited = obj.animation_data.action
    assert edited != source and keys_of(source, obj, fcurves_for).keys() == keys.keys()
    after = keys_of(edited, obj, fcurves_for)
    for channel, source_keys in keys_of(source, obj, fcurves_for).items():
        np.testing.assert_array_equal(source_keys, keys[channel])  # the source is untouched
    assert_outside_kept_and_span_changed(keys, after, (40, 80))
    assert_smooth_seams(keys, after, (40, 80))
    edited_name, source_name, rig_name = edited.name, source.name, obj.name

    bpy.ops.ed.undo()  # one step takes the whole edit back
    assert edited_name not in bpy.data.actions
    assert bpy.data.objects[rig_name].animation_data.action == bpy.data.actions[source_name]
    obj, source = bpy.data.objects[rig_name], bpy.data.actions[source_name]

    path = tmp_path / "generated.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    reloaded = bpy.data.actions[source_name]
    stored = package.vendored.packed.decode_motion(reloaded["mosa"]["motion"])
    assert stored["positions"].shape == (80, 22, 3) and reloaded["mosa"]["prompt"] == "a person walks forward"
    reloaded_keys = keys_of(reloaded, bpy.data.objects[rig_name], fcurves_for)
    assert reloaded_keys.keys() == keys.keys()
    for channel, source_keys in keys.items():
        np.testing.assert_array_equal(reloaded_keys[channel], source_keys)


def real_walk() -> dict:
    """DeepMimic's walk (real motion capture, shipped with pybullet) as a canonical motion dict."""
    deepmimic = pytest.importorskip("engine.datasets.deepmimic", reason="the DeepMimic walk ships with pybullet")
    from retarget.motion import CanonicalMotion

    return CanonicalMotion.from_positions(deepmimic.load_joints("walk", min_seconds=4)).to_dict()


# Every rotation mode Blender has, given to the bones in turn.
ROTATION_MODES = ("QUATERNION", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "AXIS_ANGLE")


def set_rotation_modes(obj, modes: str) -> None:
    """ "QUATERNION": every bone in quaternions; "EULER": Euler throughout, the six orders in turn;
    "MIXED": every mode in turn, axis-angle included."""
    cycle = {"QUATERNION": ROTATION_MODES[:1], "EULER": ROTATION_MODES[1:7], "MIXED": ROTATION_MODES}[modes]
    for number, pose_bone in enumerate(obj.pose.bones):
        pose_bone.rotation_mode = cycle[number % len(cycle)]


@pytest.mark.parametrize("modes", ["QUATERNION", "MIXED"])
def test_regenerate_a_range_of_an_action_mosa_did_not_make(engine, modes):
    """A mocap walk keyed on the rig with no stored motion: read back by inverse transfer, the
    range regenerated by the engine, spliced into a new action; with the bones in quaternions,
    or in every Euler order and axis-angle (their keys are read and written in their own modes)."""
    from retarget import canonical

    package, _ = engine
    fcurves_for = package.action_compat.fcurves_for
    obj = mixamo_rig()
    set_rotation_modes(obj, modes)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 30, 1
    walk = real_walk()
    keyed = bpy.data.actions.new("mocap walk")
    package.baking.bake_tracks(keyed, obj, package.retargeting.motion_to_tracks(obj, walk, 30.0, 1, foot_lock=False))
    before = keys_of(keyed, obj, fcurves_for)

    # The inverse transfer reads the walk back off the rig, at 20 fps again, in canonical space.
    first, last = (int(frame) for frame in keyed.frame_range)
    recovered = np.asarray(package.retargeting.action_to_motion(obj, list(range(first, last + 1)), 30.0)["positions"])
    source = np.asarray(walk["positions"])[: len(recovered)]
    assert abs(len(recovered) - len(walk["positions"])) <= 1
    bones = [j for j in range(1, 22) if canonical.JOINT_NAMES[j] not in ("LeftShoulder", "RightShoulder")]

    def directions(positions: np.ndarray) -> np.ndarray:
        offsets = positions[:, bones] - positions[:, canonical.PARENTS[bones]]
        return offsets / np.linalg.norm(offsets, axis=-1, keepdims=True)

    # Every bone points the same way (the chest-to-collar offsets are body shape, not pose) ...
    angles = np.degrees(np.arccos(np.clip((directions(recovered) * directions(source)).sum(-1), -1, 1)))
    assert angles.mean() < 0.5 and angles.max() < 5.0  # 20 -> 30 -> 20 fps interpolates a little
    # ... and the body travels the same path (scaled to the canonical leg length: within 2%).
    travel = np.linalg.norm(source[:, 0] - source[:1, 0], axis=-1)
    assert travel.max() > 3.0 and (np.linalg.norm(recovered[:, 0] - source[:, 0], axis=-1) < 0.01 + 0.02 * travel).all()

    scene.mosa.prompt, scene.mosa.range_start, scene.mosa.range_end = "a person jumps", 40, 80
    scene.mosa.foot_lock = False
    assert bpy.ops.mosa.regenerate_range(synchronous=True) == {"FINISHED"}
    edited = obj.animation_data.action
    assert edited.name == "mocap walk (edit 40-80)" and edited["mosa"]["prompt"] == "a person jumps"
    for channel, source_keys in keys_of(keyed, obj, fcurves_for).items():
        np.testing.assert_array_equal(source_keys, before[channel])  # the source is untouched
    after = keys_of(edited, obj, fcurves_for)
    assert_outside_kept_and_span_changed(before, after, (40, 80))
    assert_smooth_seams(before, after, (40, 80))
    keyed_modes = {path.rsplit(".", 1)[1] for path, _ in after if "rotation" in path}
    assert keyed_modes == (
        {"rotation_quaternion"}
        if modes == "QUATERNION"
        else {"rotation_quaternion", "rotation_euler", "rotation_axis_angle"}
    )


def keyed_bone(data_path: str) -> str:
    """The bone an fcurve of a pose bone keys, its name unescaped."""
    return bpy.utils.unescape_identifier(re.match(r'pose\.bones\["((?:[^"\\]|\\.)*)"\]', data_path).group(1))


@pytest.mark.parametrize("rig_kind", ["rigify", "all_euler", "axis_angle", "quoted_names"])
def test_generated_keys_play_in_each_bones_rotation_mode(engine, rig_kind, request):
    """Generate on Rigify's generated rig (its shoulder controls are YXZ Euler), on a rig that is
    Euler throughout (the six orders in turn), on one in axis-angle and on one whose bone names
    hold quotes, a backslash and letters beyond ASCII: each bone is keyed in its own mode, every
    fcurve resolves, and the bones Blender evaluates point where the motion's do (world
    directions within a degree on average)."""
    from tests.retarget_checks import direction_errors

    package, _ = engine
    if rig_kind == "rigify":
        obj = rigify_rig(request.getfixturevalue("rigify_file"))
    elif rig_kind == "quoted_names":
        obj = mixamo_rig(prefix='Figür "Ä"\\ 骨:')
    else:
        obj = mixamo_rig()
        for pose_bone in obj.pose.bones:
            pose_bone.rotation_mode = "AXIS_ANGLE"
        if rig_kind == "all_euler":
            set_rotation_modes(obj, "EULER")
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 20, 1  # scene frame t + 1 is canonical frame t
    scene.mosa.prompt, scene.mosa.seconds, scene.mosa.seed, scene.mosa.foot_lock = (
        "a person walks forward",
        2.0,
        2,
        False,
    )
    scene.mosa.variations, scene.mosa.place_variations = 1, "ACTIONS"
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    action = obj.animation_data.action
    keys = keys_of(action, obj, package.action_compat.fcurves_for)
    mapping = package.mapping_ops.read_mapping(obj.data.mosa_mapping)
    for path, _ in keys:
        obj.path_resolve(path)  # raises for a path that names no bone
    keyed = {keyed_bone(path): path.rsplit(".", 1)[1] for path, _ in keys if ".rotation" in path}
    for bone in set(mapping.bones.values()) & set(keyed):
        mode = obj.pose.bones[bone].rotation_mode
        prop = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")
        assert keyed[bone] == prop, f"{bone} ({mode}) is not keyed in its mode"
    if rig_kind == "rigify":
        assert obj.pose.bones["shoulder.L"].rotation_mode == "YXZ"
        assert ('pose.bones["shoulder.L"].rotation_euler', 0) in keys
    motion = package.vendored.packed.decode_motion(action["mosa"]["motion"])
    skeleton = package.armature_io.skeleton_from_armature(obj)
    frames = list(range(1, len(motion["positions"]) + 1))
    heads, tails = package.armature_io.read_posed_bones(obj, skeleton, frames)
    joints = skeleton.to_world(package.vendored.mapping.joint_positions(skeleton, mapping, heads, tails))
    errors = direction_errors(skeleton, mapping, joints, np.asarray(motion["positions"]))
    print(
        f"\n{rig_kind}: direction error mean {errors.mean():.4f} max {errors.max():.4f} deg over {errors.size} bone-frames"
    )
    assert errors.mean() < 1.0


def world_heads(obj, bones: list[str], frames: list[int]) -> np.ndarray:
    """World positions (frames, bones, 3) of the bones' heads as Blender evaluates the pose."""
    heads = np.zeros((len(frames), len(bones), 3))
    for t, frame in enumerate(frames):
        bpy.context.scene.frame_set(frame)
        world = np.array(obj.matrix_world)
        for b, bone in enumerate(bones):
            heads[t, b] = (world @ np.append(np.array(obj.pose.bones[bone].head), 1.0))[:3]
    return heads


def test_no_action_is_lost_on_save_after_generate_variations_regenerate_and_bake(engine, tmp_path):
    """An animator's session on a hand-keyed rig: Generate, three variations as actions, Regenerate
    Range, Bake. Saved and reopened, every action is still there with a user (generated takes by
    their fake user, the hand-keyed original on a muted "[Action Stash]" track), and the rig's
    Takes list names each of them."""
    package, _ = engine
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 20, 1
    original = bpy.data.actions.new("keyed by hand")
    package.action_compat.assign_action(obj, original)
    hips = obj.pose.bones["mixamorig:Hips"]
    for frame, height in ((1, 0.0), (20, 0.1), (40, 0.0)):
        hips.location = (0.0, height, 0.0)
        hips.keyframe_insert("location", frame=frame)
    original_keys = keys_of(original, obj, package.action_compat.fcurves_for)
    settings = scene.mosa
    settings.prompt, settings.seconds, settings.seed, settings.foot_lock = "a person walks forward", 2.0, 1, False
    settings.variations, settings.place_variations = 1, "ACTIONS"
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    settings.prompt, settings.variations, settings.seed = "a person waves", 3, 5
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    assert obj.animation_data.action.name == "MoSa: a person waves (seed 5)"
    settings.prompt, settings.variations, settings.range_start, settings.range_end = "a person jumps", 1, 10, 30
    assert bpy.ops.mosa.regenerate_range(synchronous=True) == {"FINISHED"}
    assert bpy.ops.mosa.bake() == {"FINISHED"}
    made = {
        "keyed by hand",
        "MoSa: a person walks forward (seed 1)",
        "MoSa: a person waves (seed 5)",
        "MoSa: a person waves (seed 6)",
        "MoSa: a person waves (seed 7)",
        "MoSa: a person waves (seed 5) (edit 10-30)",
        "MoSa: a person waves (seed 5) (edit 10-30) (baked)",
    }
    assert {action.name for action in bpy.data.actions} == made
    assert {take.action.name for take in obj.mosa_takes.items} == made

    path = tmp_path / "session.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not bpy.data.actions
    bpy.ops.wm.open_mainfile(filepath=str(path))
    reopened = {action.name: action for action in bpy.data.actions}
    print(
        f"\nafter save and reopen: {len(reopened)} of {len(made)} actions, users "
        + ", ".join(
            f"{name}: {action.users}{' (fake)' if action.use_fake_user else ''}"
            for name, action in sorted(reopened.items())
        )
    )
    assert set(reopened) == made and all(action.users > 0 for action in reopened.values())
    assert all(reopened[name].use_fake_user for name in made - {"keyed by hand"})
    obj = bpy.data.objects["mixamo"]
    assert obj.animation_data.action.name == "MoSa: a person waves (seed 5) (edit 10-30) (baked)"
    stash = [track for track in obj.animation_data.nla_tracks if track.name == "[Action Stash]"]
    assert [track.strips[0].action.name for track in stash] == ["keyed by hand"] and stash[0].mute
    assert {take.action.name for take in obj.mosa_takes.items} == made
    reopened_keys = keys_of(reopened["keyed by hand"], obj, package.action_compat.fcurves_for)
    assert reopened_keys.keys() == original_keys.keys()
    for channel, keys in original_keys.items():
        np.testing.assert_array_equal(reopened_keys[channel], keys)


def test_bake_locks_the_feet_and_keeps_the_root_in_place(addon):
    """Bake on a real walk (DeepMimic's): the foot lock stops the planted feet sliding, In Place
    keeps the hips over the spot while they still bob, and the source action stays as it was."""
    from retarget import footlock

    package, _ = addon
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.render.fps = 20  # scene frame t + 1 is canonical frame t
    walk = real_walk()
    source = bpy.data.actions.new("walk")
    package.baking.bake_tracks(source, obj, package.retargeting.motion_to_tracks(obj, walk, 20.0, 1, foot_lock=False))
    package.operators._store(source, obj, walk, "a person walks", 0, "deepmimic")
    source_keys = keys_of(source, obj, package.action_compat.fcurves_for)
    frames = list(range(1, len(walk["positions"]) + 1))
    feet, hips = ["mixamorig:LeftFoot", "mixamorig:RightFoot"], ["mixamorig:Hips"]

    def bake(foot_lock: bool, in_place: bool):
        package.action_compat.assign_action(obj, source)
        scene.mosa.foot_lock, scene.mosa.in_place = foot_lock, in_place
        assert bpy.ops.mosa.bake() == {"FINISHED"}
        baked = obj.animation_data.action
        assert baked != source and baked["mosa"]["prompt"] == "a person walks"
        return world_heads(obj, feet + hips, frames)

    free, locked, in_place = bake(False, False), bake(True, False), bake(True, True)
    for channel, keys in keys_of(source, obj, package.action_compat.fcurves_for).items():
        np.testing.assert_array_equal(keys, source_keys[channel])  # the source is untouched

    planted = footlock.contacts(np.asarray(walk["positions"]))[:, [0, 2]]  # ankles: left, right

    def slide(heads: np.ndarray) -> float:
        """Mean horizontal foot travel per frame while the source says the foot is planted."""
        steps = np.linalg.norm(np.diff(heads[:, :2, :2], axis=0), axis=-1)
        both = planted[1:] & planted[:-1]
        return float(steps[both].mean())

    assert planted.sum() > 10 and slide(free) > 0.002
    assert slide(locked) < 0.5 * slide(free) and slide(locked) < 0.003
    travel = np.linalg.norm(free[-1, 2, :2] - free[0, 2, :2])
    assert travel > 2.0  # the walk goes somewhere ...
    assert np.ptp(in_place[:, 2, :2], axis=0).max() < 0.02  # ... in place the hips stay over one spot
    assert np.ptp(in_place[:, 2, 2]) > 0.01  # and still rise and fall with the steps


def test_an_unmappable_rig_is_refused_before_the_engine_works(addon):
    obj = new_armature("stick", [("pole", (0, 0, 0), (0, 0, 2), None)])
    bpy.context.scene.mosa.prompt = "a person walks"
    with pytest.raises(RuntimeError, match="map onto the human skeleton.*Mapping list"):
        bpy.ops.mosa.generate(synchronous=True)
    assert obj.animation_data is None and not bpy.data.actions
    assert len(obj.data.mosa_mapping.pairs) == 22  # listed, ready to map by hand
    with pytest.raises(RuntimeError, match="nothing saved"):  # no "bones": {} file
        bpy.ops.mosa.save_mapping(filepath=str(Path(tempfile.mkdtemp()) / "stick.json"))


def while_the_job_runs(package, do) -> threading.Thread:
    """Call `do(run)` from another thread as soon as the operator's job exists (the synchronous
    operator blocks this one): the way a user's Cancel or a crash arrives mid-job."""

    def watch():
        deadline = time.monotonic() + 60
        while package.operators._active_run is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if package.operators._active_run is not None:
            do(package.operators._active_run)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cancel_mid_job_leaves_the_scene_untouched_and_a_killed_engine_recovers(engine):
    package, _ = engine
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.mosa.prompt, scene.mosa.seconds = "a person dances", 9.8
    watcher = while_the_job_runs(package, lambda run: run.cancel())
    assert bpy.ops.mosa.generate(synchronous=True) == {"CANCELLED"}  # reported as a warning, not an error
    watcher.join()
    assert obj.animation_data is None and not bpy.data.actions

    watcher = while_the_job_runs(package, lambda run: os.kill(package.engine_session._process.pid, signal.SIGKILL))
    with pytest.raises(RuntimeError, match="the engine stopped answering"):
        bpy.ops.mosa.generate(synchronous=True)
    watcher.join()
    assert obj.animation_data is None and not bpy.data.actions
    scene.mosa.seconds = 2.0
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}  # on a restarted engine
    assert obj.animation_data.action.name == "MoSa: a person dances (seed 0)"


def scene_state(obj, fcurves_for) -> tuple:
    """What a cancelled job must leave exactly as it was: the actions, the active one, every key
    of every action, and the rig's pose."""
    actions = sorted(bpy.data.actions.keys())
    active = obj.animation_data.action.name if obj.animation_data and obj.animation_data.action else None
    keys = {name: keys_of(bpy.data.actions[name], obj, fcurves_for) for name in actions}
    if active is not None:
        obj.animation_data.action = bpy.data.actions[active]  # keys_of assigns each action in turn
    pose = [np.array(bone.matrix_basis) for bone in obj.pose.bones]
    return actions, active, keys, pose


def assert_same_scene(before: tuple, after: tuple) -> None:
    assert after[:2] == before[:2]
    assert after[2].keys() == before[2].keys()
    for name, channels in before[2].items():
        assert after[2][name].keys() == channels.keys()
        for channel, keys in channels.items():
            np.testing.assert_array_equal(after[2][name][channel], keys)
    assert all(np.array_equal(a, b) for a, b in zip(after[3], before[3]))


def test_the_blender_side_runs_in_slices_and_cancel_midway_leaves_the_scene_as_it_was(engine, caplog, rigify_file):
    """Generate (two variations) and Regenerate Range on Rigify's rig, their Blender-side phase
    driven slice by slice the way the modal timer does, and cancelled in the middle: after the
    first variation's action was keyed, and while the range is being solved."""
    package, client = engine[0], live_client(engine[0])
    fcurves_for = package.action_compat.fcurves_for
    obj = rigify_rig(rigify_file)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 30, 1
    scene.mosa.prompt, scene.mosa.seconds, scene.mosa.seed, scene.mosa.variations = "a person walks forward", 4.0, 3, 2
    take = bpy.data.actions.new("the animator's take")
    package.baking.bake_tracks(take, obj, wavy_tracks_on(package, obj, np.arange(1, 121, dtype=float)))
    bpy.context.view_layer.update()  # the take poses the rig
    before = scene_state(obj, fcurves_for)

    run = run_to_end(
        package.operators.JobRun(client, client.generate(scene.mosa.prompt, seconds=4.0, seed=3, samples=2))
    )
    writing = package.operators.Writing(obj, package.operators.generated_actions(bpy.context, run))
    slices, made_one = 0, False
    while not made_one:
        assert not writing.step(), "the work ended before it could be cancelled"
        slices += 1
        made_one = len(bpy.data.actions) > len(before[0])
    assert 0.0 < writing.progress < 1.0 and slices > 3
    writing.cancel()
    assert_same_scene(before, scene_state(obj, fcurves_for))

    # Finishing the same work instead keys both variations.
    writing = package.operators.Writing(obj, package.operators.generated_actions(bpy.context, run))
    while not writing.step():
        pass
    assert not writing.error and len(bpy.data.actions) == len(before[0]) + 2
    generated = obj.animation_data.action
    scene.mosa.range_start, scene.mosa.range_end, scene.mosa.variations = 40, 70, 1
    before = scene_state(obj, fcurves_for)
    motion = package.vendored.packed.decode_motion(generated["mosa"]["motion"])
    mask = package.spans.canonical_mask((40, 70), generated.frame_range[0], 30.0, len(motion["positions"]), 20.0)
    wire = {key: value.tolist() if hasattr(value, "tolist") else value for key, value in motion.items()}
    edit = run_to_end(package.operators.JobRun(client, client.edit("a person jumps", wire, mask.tolist(), seed=1)))
    writing = package.operators.Writing(
        obj, package.operators.regenerated_action(bpy.context, edit, package.operators.Placing())
    )
    assert not writing.step() and not writing.step()  # mapped and transferred; the check, solve and keys to come
    writing.cancel()
    assert_same_scene(before, scene_state(obj, fcurves_for))
    assert "solved by Blender's evaluation" not in caplog.text  # Rigify's controls: all in numpy


# What an animator maps in the panel, joint -> bone: an MMD model (Japanese names, centre, groove
# and waist above the body, D leg chains and leg IK beside the legs) and a Daz Genesis 8 figure
# (bend/twist-split limbs, the legs under a pelvis bone below the hip).
BY_HAND = {
    "mmd": {
        "Hips": "センター",
        "Spine": "上半身",
        "Spine2": "上半身2",
        "Neck": "首",
        "Head": "頭",
        **{
            f"{side}{joint}": ("左" if side == "Left" else "右") + part
            for side in ("Left", "Right")
            for joint, part in (
                ("UpLeg", "足"),
                ("Leg", "ひざ"),
                ("Foot", "足首"),
                ("Toe", "つま先"),
                ("Shoulder", "肩"),
                ("Arm", "腕"),
                ("ForeArm", "ひじ"),
                ("Hand", "手首"),
            )
        },
    },
    "daz_genesis8": {
        "Hips": "hip",
        "Spine": "abdomenLower",
        "Spine1": "chestLower",
        "Spine2": "chestUpper",
        "Neck": "neckLower",
        "Head": "head",
        **{
            f"{side}{joint}": side[0].lower() + part
            for side in ("Left", "Right")
            for joint, part in (
                ("UpLeg", "ThighBend"),
                ("Leg", "Shin"),
                ("Foot", "Foot"),
                ("Toe", "Toe"),
                ("Shoulder", "Collar"),
                ("Arm", "ShldrBend"),
                ("ForeArm", "ForearmBend"),
                ("Hand", "Hand"),
            )
        },
    },
}


def rig_from(name: str, bones) -> bpy.types.Object:
    """A real armature from a tests/retarget_rigs bone list (A-pose, bones with their rolls at zero)."""
    from tests import retarget_rigs

    names, heads, tails, parents, _rolls = retarget_rigs.rig_arrays(bones, "A", roll_seed=None)
    return new_armature(
        name,
        [
            (bone, tuple(head), tuple(tail), names[parent] if parent >= 0 else None)
            for bone, head, tail, parent in zip(names, heads, tails, parents)
        ],
    )


def map_in_the_panel(obj, by_hand: dict[str, str]) -> None:
    """What the user does in the Mapping list: select each bone in Pose Mode, click its joint's fill button."""
    bpy.ops.object.mode_set(mode="POSE")
    stored = obj.data.mosa_mapping
    for row, pair in enumerate(stored.pairs):
        if pair.joint in by_hand:
            obj.data.bones.active = obj.data.bones[by_hand[pair.joint]]
            assert bpy.ops.mosa.fill_joint(index=row) == {"FINISHED"}
        else:
            assert bpy.ops.mosa.clear_joint(index=row) == {"FINISHED"}
    bpy.ops.object.mode_set(mode="OBJECT")


@pytest.mark.parametrize("family", sorted(BY_HAND))
def test_with_automatic_mapping_off_a_rig_is_mapped_in_the_panel_and_generates(engine, tmp_path, family):
    """No automatic mapping: Generate lists the 22 joints and says how to map them; filled from
    the selected bones one click each, the mapping saves with its real bones and the rig
    generates through the engine, every mapped bone following the motion's directions."""
    from retarget.mapping import Mapping
    from tests import retarget_rigs
    from tests.retarget_checks import direction_errors

    package, _ = engine
    by_hand = BY_HAND[family]
    obj = rig_from(family, retarget_rigs.FAMILIES[family]())
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 20, 1  # scene frame t + 1 is canonical frame t
    scene.mosa.prompt, scene.mosa.seconds, scene.mosa.foot_lock = "a person walks forward", 2.0, False
    obj.data.mosa_mapping.automatic = False
    with pytest.raises(RuntimeError, match="automatic mapping is off .* click its joint's fill button"):
        bpy.ops.mosa.generate(synchronous=True)
    stored = obj.data.mosa_mapping
    assert [pair.joint for pair in stored.pairs] == package.mapping_ops.canonical.JOINT_NAMES  # all 22 listed
    assert not any(pair.bone for pair in stored.pairs) and not bpy.data.actions

    map_in_the_panel(obj, by_hand)
    assert {pair.joint: pair.bone for pair in stored.pairs if pair.bone} == by_hand
    assert stored.family == "user"
    saved = tmp_path / f"{family}_mapping.json"
    assert bpy.ops.mosa.save_mapping(filepath=str(saved)) == {"FINISHED"}
    assert {joint: bone for joint, bone in json.loads(saved.read_text())["bones"].items() if bone} == by_hand

    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    action = obj.animation_data.action
    motion = package.vendored.packed.decode_motion(action["mosa"]["motion"])
    skeleton = package.armature_io.skeleton_from_armature(obj)
    mapping = Mapping(dict(by_hand))
    frames = list(range(1, len(motion["positions"]) + 1))
    heads, tails = package.armature_io.read_posed_bones(obj, skeleton, frames)
    from retarget.mapping import joint_positions

    joints = skeleton.to_world(joint_positions(skeleton, mapping, heads, tails))
    errors = direction_errors(skeleton, mapping, joints, np.asarray(motion["positions"]))
    print(
        f"\n{family} rig mapped by hand: direction error mean {errors.mean():.4f} max {errors.max():.4f} deg "
        f"over {errors.size} bone-frames"
    )
    assert errors.mean() < 0.5 and errors.max() < 2.0


def test_a_lower_body_bone_as_hips_is_refused_before_any_key(addon):
    """Hips given to MMD's lower-body bone (the legs hang from it, the spine does not): Generate is
    refused before the engine runs, and the transfer of a real walk says how far the body would
    come apart; no action, no key."""
    from tests import retarget_rigs

    package, _ = addon
    obj = rig_from("mmd", retarget_rigs.mmd())
    assert bpy.ops.mosa.map_automatically() == {"FINISHED"}
    stored = obj.data.mosa_mapping
    assert stored.family == "mmd"
    rows = {pair.joint: row for row, pair in enumerate(stored.pairs)}
    obj.data.bones.active = obj.data.bones["右足"]
    bpy.ops.mosa.fill_joint(index=rows["LeftUpLeg"])  # one bone plays one joint: RightUpLeg lets it go
    assert (stored.pairs[rows["LeftUpLeg"]].bone, stored.pairs[rows["RightUpLeg"]].bone) == ("右足", "")
    assert stored.active_index == rows["RightUpLeg"]  # the next joint to fill
    assert bpy.ops.mosa.map_automatically() == {"FINISHED"}
    map_in_the_panel(
        obj, {**{pair.joint: pair.bone for pair in obj.data.mosa_mapping.pairs if pair.bone}, "Hips": "下半身"}
    )
    bpy.context.scene.mosa.prompt = "a person walks forward"
    with pytest.raises(RuntimeError, match="do not hang under '下半身'"):
        bpy.ops.mosa.generate(synchronous=True)
    assert obj.animation_data is None and not bpy.data.actions
    with pytest.raises(ValueError, match="do not hang under '下半身'"):
        package.retargeting.motion_to_tracks(obj, real_walk(), 20.0, 1)  # Bake and Regenerate Range pass here
    assert obj.animation_data is None and not bpy.data.actions
    # What the walk would have done to the body, as the motion check measures it on this armature.
    vendored = package.vendored
    skeleton = package.armature_io.skeleton_from_armature(obj)
    wrong = package.mapping_ops.read_mapping(obj.data.mosa_mapping)
    problems = vendored.plausibility.motion_problems(
        skeleton, wrong, vendored.transfer.transfer(real_walk(), skeleton, wrong)
    )
    print("\nwrong Hips on a real walk: " + "; ".join(problems))
    hips_to_head = next(p for p in problems if p.startswith("Hips to Head"))
    assert float(hips_to_head.split(" m at frame")[0].split()[-1]) > 2.0


@pytest.fixture(scope="module")
def model_mirror(tmp_path_factory):
    """The stand-in for Google Drive and the Hub (tests/model_server.py) on the release's files,
    which the engine's Python makes (on the 4.5 LTS run this process has no torch)."""
    from service_engine import ENGINE_PYTHON, engine_env

    from tests.model_server import ModelServer

    folder = tmp_path_factory.mktemp("release")
    made = subprocess.run(
        [ENGINE_PYTHON, "-m", "tests.model_release_files", str(folder)],
        cwd=ROOT,
        env=engine_env(),
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    with ModelServer.for_release(folder) as server:
        yield server


def test_official_models_download_from_the_preferences_and_the_panel_switches_between_them(
    addon, model_mirror, tmp_path, monkeypatch
):
    from service_engine import ENGINE_PYTHON

    package, _ = addon
    for name, value in {
        "MOSA_MODELS_DIR": tmp_path / "models",
        "MOSA_MODELS_MIRROR": model_mirror.url,
        "HF_HUB_CACHE": tmp_path / "hf",
        "OMP_NUM_THREADS": 1,
    }.items():
        monkeypatch.setenv(name, str(value))  # the engine's processes inherit these
    rig = mixamo_rig()  # a fresh file, and with it a fresh WindowManager: nothing asked yet
    prefs = package.preferences.get(bpy.context)
    prefs.engine_python, prefs.device, prefs.model = ENGINE_PYTHON, "cpu", "HUMANML3D"
    models = bpy.context.window_manager.mosa_models
    assert package.model_ops.describe(bpy.context)[0].startswith("installed models: not checked yet")
    assert bpy.ops.mosa.refresh_models() == {"FINISHED"}
    assert {row.key: row.installed for row in models.rows} == {"demo": True, "humanml3d": False, "motionx": False}
    assert "non-commercial research" in models.licences and "MIT licence" in models.licences
    assert package.model_ops.describe(bpy.context) == (
        "HumanML3D: not installed (Preferences > Download Official Models)",
        "IMPORT",
    )
    bpy.context.scene.mosa.prompt, bpy.context.scene.mosa.seconds = "a person walks forward", 2.0
    with pytest.raises(RuntimeError, match="HumanML3D model is not installed.*Download Official Models"):
        bpy.ops.mosa.generate(synchronous=True)
    with pytest.raises(RuntimeError, match="accept the licences"):
        bpy.ops.mosa.download_models(synchronous=True)
    assert model_mirror.requests == []

    started = time.perf_counter()
    assert bpy.ops.mosa.download_models(accept_licences=True, synchronous=True) == {"FINISHED"}
    print(f"Download Official Models: {time.perf_counter() - started:.1f} s")
    assert {row.key: row.installed for row in models.rows} == {"demo": True, "humanml3d": True, "motionx": True}
    assert models.status.startswith("installed humanml3d, motionx")
    assert package.model_ops.describe(bpy.context) == (f"HumanML3D: {models.rows[1].knows}", "CHECKMARK")

    for choice, name in (("HUMANML3D", "mosa-official-t2m"), ("MOTIONX", "mosa-official-motionx")):
        prefs.model = choice  # no restart of Blender: the next job starts the engine on the chosen model
        assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
        assert rig.animation_data.action["mosa"]["model"] == name
        assert package.engine_session._process.checkpoint == str(tmp_path / "models" / f"{choice.lower()}.pt")

    assert bpy.ops.mosa.remove_models() == {"FINISHED"}
    assert {row.key: row.installed for row in models.rows} == {"demo": True, "humanml3d": False, "motionx": False}
    assert not list((tmp_path / "models").glob("*.pt")) and package.engine_session._process is None
    prefs.model = "DEMO"  # as the tests after this one expect


def test_a_model_download_shows_its_progress_is_cancelled_and_resumes(addon, model_mirror, tmp_path, monkeypatch):
    """Download Official Models as a script runs it (synchronous: headless Blender has no window for
    the modal timer, whose ticks call the same `advance`): its status-bar line has bytes, rate and
    time left; a cancel mid-transfer (what Esc and Cancel do) keeps the bytes and installs nothing;
    the next press resumes with a Range request and installs both models."""
    from service_engine import ENGINE_PYTHON

    from tests.model_server import ARCHIVE

    package, _ = addon
    for name, value in {
        "MOSA_MODELS_DIR": tmp_path / "models",
        "MOSA_MODELS_MIRROR": model_mirror.url,
        "HF_HUB_CACHE": tmp_path / "hf",
    }.items():
        monkeypatch.setenv(name, str(value))
    bpy.ops.wm.read_homefile(use_empty=True)
    package.preferences.get(bpy.context).engine_python = ENGINE_PYTHON
    models = bpy.context.window_manager.mosa_models
    seen: list[str] = []

    def cancel_once_the_rate_is_known() -> None:  # a thread: it reads the run and stops it, never bpy
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = package.model_ops._download
            if run is not None and run.line.endswith(" left"):
                seen.append(run.status_text)
                run.cancel()
                return
            time.sleep(0.05)

    model_mirror.faults.throttle_s = 0.1  # about 0.6 MB/s: still downloading when cancelled
    canceller = threading.Thread(target=cancel_once_the_rate_is_known)
    canceller.start()
    try:
        result = bpy.ops.mosa.download_models(accept_licences=True, synchronous=True)
    finally:
        canceller.join()
        model_mirror.faults.throttle_s = 0.0
    print(f"status bar during the download: {seen}")
    assert len(seen) == 1 and re.fullmatch(
        r"MoSa: download MoSa\.zip: [\d.]+ [KM]B of 2\.7 MB, [\d.]+ [KM]B/s, \d+ s left - Esc cancels", seen[0]
    ), seen
    assert result == {"CANCELLED"} and "resumes" in models.status, models.status
    assert package.model_ops._download is None and bpy.ops.mosa.download_models.poll()
    (partial,) = (tmp_path / "models" / "downloads").glob("*.part")
    kept = partial.stat().st_size
    assert 0 < kept < len(model_mirror.files[ARCHIVE]) and not list((tmp_path / "models").glob("*.pt"))
    assert {row.key: row.installed for row in models.rows} == {"demo": True, "humanml3d": False, "motionx": False}

    assert bpy.ops.mosa.download_models(accept_licences=True, synchronous=True) == {"FINISHED"}
    assert model_mirror.ranges(ARCHIVE)[-1] == f"bytes={kept}-", "the second press asks only for the bytes it lacks"
    assert {row.key: row.installed for row in models.rows} == {"demo": True, "humanml3d": True, "motionx": True}


def test_a_failed_model_download_says_why(addon, model_mirror, tmp_path, monkeypatch):
    """The engine's own message in the report (here a models folder under a file); for an engine
    that stops without one, the last line of its log and where the log is."""
    from service_engine import ENGINE_PYTHON

    package, _ = addon
    (tmp_path / "file").write_text("kept")
    monkeypatch.setenv("MOSA_MODELS_DIR", str(tmp_path / "file" / "models"))
    monkeypatch.setenv("MOSA_MODELS_MIRROR", model_mirror.url)
    bpy.ops.wm.read_homefile(use_empty=True)
    package.preferences.get(bpy.context).engine_python = ENGINE_PYTHON
    said = f"cannot write {tmp_path / 'file' / 'models'} (Not a directory); set MOSA_MODELS_DIR"
    with pytest.raises(RuntimeError, match=re.escape(f"MoSa: {said}")):
        bpy.ops.mosa.download_models(accept_licences=True, synchronous=True)
    assert bpy.context.window_manager.mosa_models.status.startswith(said)
    assert package.model_ops._download is None and (tmp_path / "file").read_text() == "kept"

    log = tmp_path / "download.log"
    run = package.model_catalogue.DownloadRun.start(ENGINE_PYTHON, tmp_path, log)  # no engine in that folder
    while not run.poll():
        time.sleep(0.05)
    assert run.state == "failed" and run.message == (
        f"the download stopped (exit code 1): {ENGINE_PYTHON}: No module named engine; the whole log is {log}"
    ), run.message


def test_the_model_buttons_say_when_the_engine_python_is_missing_or_is_not_the_engine(addon, tmp_path):
    """Refresh, Download and Remove with Engine Python empty (the default before Set Up Engine: a
    Python that is not there yet), a missing file, and a program that is no engine: one message
    each, never a traceback, and the buttons stay usable."""
    package, _ = addon
    bpy.ops.wm.read_homefile(use_empty=True)
    prefs = package.preferences.get(bpy.context)
    saved = prefs.engine_python
    missing = "does not exist: run Set Up Engine in the add-on's preferences first"
    try:
        for python, said in (
            ("", f"{package.engine_setup.venv_python(package.preferences.user_dir())} {missing}"),
            (str(tmp_path / "python"), f"{tmp_path / 'python'} {missing}"),
            ("/bin/echo", "/bin/echo did not answer as the MoSa engine does (its output: -m engine models "),
        ):
            prefs.engine_python = python
            for press in (
                bpy.ops.mosa.refresh_models,
                partial(bpy.ops.mosa.download_models, accept_licences=True, synchronous=True),
                bpy.ops.mosa.remove_models,
            ):
                with pytest.raises(RuntimeError) as refused:
                    press()
                assert str(refused.value).startswith(f"Error: MoSa: the engine's Python {said}"), str(refused.value)
            assert package.model_ops._download is None and bpy.ops.mosa.download_models.poll()
    finally:
        prefs.engine_python = saved


def test_a_prompt_timeline_then_extend_and_in_between_keys_on_a_rig(engine):
    """Issue 22 in the add-on: a 12 s shot from two Prompt Timeline rows is one action; Extend adds
    frames after (and before) an action with every one of its keys bit-identical; In-between Keys
    remakes the frames between three selected keys 2 s apart and keeps those keys as they were."""
    package, _ = engine
    fcurves_for = package.action_compat.fcurves_for
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 30, 1
    settings = scene.mosa
    settings.seed, settings.variations, settings.place_variations, settings.shot_source = 4, 1, "ACTIONS", "ROWS"
    settings.shot_rows.clear()
    for prompt in ("a person walks forward", "a person waves"):
        settings.prompt = prompt
        assert bpy.ops.mosa.shot_row_add() == {"FINISHED"}
        settings.shot_rows[settings.shot_index].seconds = 6.0
    assert [row.prompt for row in settings.shot_rows] == ["a person walks forward", "a person waves"]
    assert bpy.ops.mosa.generate_shot(synchronous=True) == {"FINISHED"}
    shot = obj.animation_data.action
    assert shot.name == "MoSa: a person walks forward + 1 more (seed 4)"
    # 12 s from the current frame: 240 engine frames at 20 fps, the last 239 / 20 s after the first
    assert shot.frame_range[0] == 1.0 and shot.frame_range[1] == pytest.approx(1 + 239 / 20 * 30, abs=1)

    settings.prompt, settings.seconds = "a person walks forward", 4.0
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    source = obj.animation_data.action
    before = keys_of(source, obj, fcurves_for)
    first, last = source.frame_range
    settings.prompt, settings.extend_seconds = "a person jumps", 6.0
    assert bpy.ops.mosa.extend(synchronous=True, side="AFTER") == {"FINISHED"}
    extended = obj.animation_data.action
    assert extended != source and extended.name.endswith("(extended after 6 s)")
    assert extended.frame_range[0] == first and extended.frame_range[1] == pytest.approx(last + 180, abs=1)
    after = keys_of(extended, obj, fcurves_for)
    for channel, keys in before.items():
        inside = after[channel][(after[channel][:, 0] >= first) & (after[channel][:, 0] <= last)]
        np.testing.assert_array_equal(inside, keys, err_msg=str(channel))
    assert all(np.array_equal(keys_of(source, obj, fcurves_for)[c], k) for c, k in before.items())  # source untouched
    obj.animation_data.action = source
    assert bpy.ops.mosa.extend(synchronous=True, side="BEFORE") == {"FINISHED"}
    lead_in = obj.animation_data.action.frame_range
    assert lead_in[0] == pytest.approx(first - 180, abs=1) and lead_in[1] == last
    hips = world_heads(obj, ["mixamorig:Hips"], list(range(int(lead_in[0]), int(last) + 1)))[:, 0]
    steps = np.linalg.norm(np.diff(hips, axis=0), axis=-1)
    into_source = int(first - lead_in[0]) - 1
    # 3.2 m when the whole motion was placed by the lead-in's first frame instead of the source's
    assert steps[into_source] <= 1.5 * steps[into_source + 1 : into_source + 6].max(), steps[into_source - 3 :][:9]
    assert bpy.ops.mosa.bake(synchronous=True) == {"FINISHED"}  # keeps that placing: it is stored with the action
    baked = world_heads(obj, ["mixamorig:Hips"], list(range(int(lead_in[0]), int(last) + 1)))[:, 0]
    # 2 m when it was not stored; up to a few cm from the foot lock, applied now over the whole motion
    assert np.abs(baked - hips).max() < 0.1, np.abs(baked - hips).max()

    # In-between: three keys 2 s apart on the extended action, selected as an animator would.
    obj.animation_data.action = extended
    chosen = [31, 91, 151]
    for fcurve in fcurves_for(extended, obj):
        for point in fcurve.keyframe_points:
            point.select_control_point = int(round(point.co[0])) in chosen
    settings.prompt = "a person hops on one leg"
    assert bpy.ops.mosa.inbetween_keys(synchronous=True) == {"FINISHED"}
    inbetweened = obj.animation_data.action
    expected = f"{extended.name} (in-between 31-151)"  # Blender 4.5 cuts names at 63 characters
    assert inbetweened.name == expected[: len(inbetweened.name)] and len(inbetweened.name) >= min(len(expected), 63)
    kept, made = keys_of(extended, obj, fcurves_for), keys_of(inbetweened, obj, fcurves_for)
    changed = 0
    for channel, keys in kept.items():
        at_keys = np.isin(keys[:, 0], chosen) | (keys[:, 0] < 31) | (keys[:, 0] > 151)
        np.testing.assert_array_equal(made[channel][np.isin(made[channel][:, 0], keys[at_keys, 0])], keys[at_keys])
        changed += not np.array_equal(made[channel], keys)
    assert changed > len(kept) // 2  # the frames between the keys are new motion


def a_walk_on_mixamo(seconds: float, foot_lock: bool = True) -> bpy.types.Object:
    """A Mixamo rig in a fresh 20 fps scene, a generated walk of `seconds` from frame 1 its action."""
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 20, 1
    settings = scene.mosa
    settings.prompt, settings.seconds, settings.seed, settings.variations = "a person walks forward", seconds, 1, 1
    settings.place_variations, settings.foot_lock = "ACTIONS", foot_lock
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    return obj


def test_an_action_with_a_manual_frame_range_is_extended_and_baked_where_its_keys_are(engine):
    """A cycle's Manual Frame Range is not where its keys are: Extend After adds keys only after
    the last key (every key kept bit for bit), and Bake keys from the first key on."""
    package, _ = engine
    fcurves_for = package.action_compat.fcurves_for
    obj = a_walk_on_mixamo(seconds=2.0)
    settings = bpy.context.scene.mosa
    source = obj.animation_data.action
    source.use_frame_range, source.frame_start, source.frame_end = True, 11, 30  # the animator's loop
    before = keys_of(source, obj, fcurves_for)
    assert {(k[0, 0], k[-1, 0]) for k in before.values()} == {(1.0, 40.0)}
    settings.prompt, settings.extend_seconds = "a person jumps", 1.0
    assert bpy.ops.mosa.extend(synchronous=True, side="AFTER") == {"FINISHED"}
    after = keys_of(obj.animation_data.action, obj, fcurves_for)
    for channel, keys in before.items():
        np.testing.assert_array_equal(after[channel][: len(keys)], keys, err_msg=str(channel))
        assert after[channel][len(keys) :, 0].min() == 41.0 and after[channel][-1, 0] == 60.0
    obj.animation_data.action = source
    assert bpy.ops.mosa.bake(synchronous=True) == {"FINISHED"}
    baked = keys_of(obj.animation_data.action, obj, fcurves_for)
    assert {(k[0, 0], k[-1, 0]) for k in baked.values()} == {(1.0, 40.0)}


def test_keys_edited_after_generate_are_what_extend_continues_and_bake_says_it_keys_the_stored_motion(engine, capfd):
    """The animator moves the generated character 1 m sideways on every hips key: Extend After
    continues from where the keys now put it (the motion stored with the action no longer
    matches them), and Bake, which keys the stored motion again, warns that the edits stay behind."""
    package, _ = engine
    fcurves_for = package.action_compat.fcurves_for
    obj = a_walk_on_mixamo(seconds=3.0, foot_lock=False)
    settings = bpy.context.scene.mosa
    source = obj.animation_data.action
    assert package.operators.stored_motion_is_keyed(source, obj)
    hips_x = fcurves_for(source, obj).find('pose.bones["mixamorig:Hips"].location', index=0)
    for point in hips_x.keyframe_points:
        point.co[1] += 1.0
        point.handle_left[1] += 1.0
        point.handle_right[1] += 1.0
    hips_x.update()
    assert not package.operators.stored_motion_is_keyed(source, obj)
    settings.prompt, settings.extend_seconds = "a person walks forward", 2.0
    assert bpy.ops.mosa.extend(synchronous=True, side="AFTER") == {"FINISHED"}
    last = package.baking.keyed_span(source)[1]
    end = package.baking.keyed_span(obj.animation_data.action)[1]
    steps = np.linalg.norm(
        np.diff(world_heads(obj, ["mixamorig:Hips"], list(range(1, end + 1)))[:, 0], axis=0), axis=-1
    )
    seam, before = steps[last - 1], steps[last - 6 : last - 1].max()
    print(f"\nhips step into the extension {seam:.3f} m, largest of the 5 before {before:.3f} m")
    assert seam <= 1.5 * before  # 10.6 m when the read-back motion was put on the rig's rest place
    obj.animation_data.action = source
    capfd.readouterr()
    assert bpy.ops.mosa.bake(synchronous=True) == {"FINISHED"}
    reported = "".join(capfd.readouterr())  # reports are printed in background mode
    assert "keys were edited since MoSa made them" in reported, reported
    assert package.operators.stored_motion_is_keyed(obj.animation_data.action, obj)


def test_an_ik_constraint_or_a_pose_scale_that_hides_the_motion_is_said(engine, capfd):
    """An IK on the left shin dragged the leg after its target (the foot 1.2 m off the walk) and
    a hips scale of 0.8 left the feet 18-28 cm in the air, while Generate reported plain success."""
    obj = mixamo_rig()
    target = bpy.data.objects.new("ik target", None)
    bpy.context.scene.collection.objects.link(target)
    ik = obj.pose.bones["mixamorig:LeftLeg"].constraints.new("IK")
    ik.target, ik.chain_count = target, 2
    obj.pose.bones["mixamorig:RightLeg"].constraints.new("IK")  # no target: a posing aid that moves nothing
    obj.pose.bones["mixamorig:Hips"].scale = (0.8, 0.8, 0.8)
    settings = bpy.context.scene.mosa
    settings.prompt, settings.seconds, settings.variations = "a person walks forward", 2.0, 1
    reported = {}
    for case in ("as set up", "ik muted, scale 1"):
        capfd.readouterr()
        assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
        reported[case] = "".join(capfd.readouterr())  # reports are printed in background mode
        ik.mute, obj.pose.bones["mixamorig:Hips"].scale = True, (1.0, 1.0, 1.0)
    assert (
        "the Inverse Kinematics constraint on 'mixamorig:LeftLeg' poses mixamorig:LeftLeg, mixamorig:LeftUpLeg"
        in reported["as set up"]
    ), reported
    assert "'mixamorig:Hips' (0.80) scaled in pose mode" in reported["as set up"]
    assert "on 'mixamorig:RightLeg'" not in reported["as set up"]
    assert "constraint on" not in reported["ik muted, scale 1"]
    assert "scaled in pose mode" not in reported["ik muted, scale 1"]


def posed_matrices(obj, frames: list[int]) -> np.ndarray:
    """(frames, bones, 4, 4) every pose bone's matrix_basis as Blender evaluates the active action."""
    posed = []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        posed.append([np.array(bone.matrix_basis) for bone in obj.pose.bones])
    return np.array(posed)


def test_a_blocking_pass_plays_as_before_outside_a_regenerated_range(engine):
    """Hand keys every 10 frames (a blocking pass; the spine only at 1 and 91), Regenerate Range
    35..55: every frame outside the range plays exactly as before. Without care, the frames between
    the range and each channel's nearest keys followed the new keys, and automatic handles
    (continuous acceleration: all of them) re-smoothed around the kept keys."""
    package, _ = engine
    obj = mixamo_rig()
    scene = bpy.context.scene
    scene.render.fps = 30
    obj.animation_data_create()
    obj.animation_data.action = bpy.data.actions.new("blocking")
    for frame in range(1, 101, 10):
        for number, bone in enumerate(obj.pose.bones):
            if bone.name == "mixamorig:Spine" and frame not in (1, 91):
                continue
            angle = 0.3 * np.sin(frame / 15 + number)
            bone.rotation_mode = "QUATERNION"
            bone.rotation_quaternion = (np.cos(angle / 2), np.sin(angle / 2), 0, 0)
            bone.keyframe_insert("rotation_quaternion", frame=frame)
        obj.pose.bones["mixamorig:Hips"].location = (0, frame * 0.01, 0)
        obj.pose.bones["mixamorig:Hips"].keyframe_insert("location", frame=frame)
    source = obj.animation_data.action
    outside = [frame for frame in range(1, 92) if not 35 <= frame <= 55]
    before = posed_matrices(obj, outside)
    settings = scene.mosa
    settings.prompt, settings.range_start, settings.range_end, settings.foot_lock = "a person jumps", 35, 55, False
    assert bpy.ops.mosa.regenerate_range(synchronous=True) == {"FINISHED"}
    assert obj.animation_data.action != source
    after = posed_matrices(obj, outside)
    print(f"\nlargest change outside the range: {np.abs(after - before).max():.2e}")
    assert np.abs(after - before).max() < 1e-5  # 0.069 on the spine when the nearest keys were any channel's
    inside = posed_matrices(obj, list(range(40, 51)))
    obj.animation_data.action = source
    assert np.abs(posed_matrices(obj, list(range(40, 51))) - inside).max() > 0.05  # the range itself is new


def test_the_timeline_operators_explain_what_is_missing(engine):
    package, _ = engine
    obj = mixamo_rig()
    settings = bpy.context.scene.mosa
    settings.shot_rows.clear()
    settings.shot_source = "ROWS"
    with pytest.raises(RuntimeError, match="Prompt Timeline is empty"):
        bpy.ops.mosa.generate_shot(synchronous=True)
    settings.shot_source = "MARKERS"
    bpy.context.scene.timeline_markers.clear()
    with pytest.raises(RuntimeError, match="No timeline marker is named"):
        bpy.ops.mosa.generate_shot(synchronous=True)
    for name in ("a person walks", "a person waves"):
        bpy.context.scene.timeline_markers.new(name, frame=60)
    with pytest.raises(RuntimeError, match="Two markers named with prompts are at frame 60"):
        bpy.ops.mosa.generate_shot(synchronous=True)
    bpy.context.scene.timeline_markers.clear()
    settings.prompt, settings.seconds, settings.variations, settings.place_variations = (
        "a person waves",
        2.0,
        1,
        "ACTIONS",
    )
    assert bpy.ops.mosa.generate(synchronous=True) == {"FINISHED"}
    fcurves = package.action_compat.fcurves_for(obj.animation_data.action, obj)
    # New keys come unselected, so a range is never taken from them by surprise.
    assert not any(point.select_control_point for fcurve in fcurves for point in fcurve.keyframe_points)
    with pytest.raises(RuntimeError, match="Set the range, a preview range, or select keys"):
        bpy.ops.mosa.regenerate_range(synchronous=True)
    for fcurve in fcurves:
        for point in fcurve.keyframe_points:
            point.select_control_point = point.co[0] == 1.0
    with pytest.raises(RuntimeError, match="at least two frames"):
        bpy.ops.mosa.inbetween_keys(synchronous=True)
    for fcurve in fcurves:
        for point in fcurve.keyframe_points:
            point.select_control_point = point.co[0] in (1.0, 2.0)
    with pytest.raises(RuntimeError, match=r"keys \(frames 1, 2\) are too close together to in-between"):
        bpy.ops.mosa.inbetween_keys(synchronous=True)
