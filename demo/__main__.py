"""The demo, end to end: `python -m demo --extension dist/mosa-X.zip ["prompt"]` (build.py demo runs it).

It installs the built extension into a throwaway Blender user folder, builds a Rigify human with
a simple skinned body, drives the add-on's own operators (Generate on the synchronous path, then
Bake) against the real engine subprocess, and writes out/<name>.blend, out/<name>.bvh,
out/<name>_sheet.png and out/<name>.gif.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "engine" / "checkpoints" / "demo.pt"
DEFAULT_PROMPT = "a person walks forward and waves"

_started = time.monotonic()


def say(message: str) -> None:
    print(f"[demo {time.monotonic() - _started:5.1f} s] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build.py demo", description="Prompt in, animated rig out.")
    parser.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT, help=f'what to do (default: "{DEFAULT_PROMPT}")')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", help="output file name (default: from the prompt)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=6.0, help="motion length (2 to 9.8 s)")
    length.add_argument(
        "--frames", type=int, help="motion length in 20 fps frames, a multiple of 4 (instead of --seconds)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="output folder")
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        choices=("demo", "humanml3d", "motionx"),
        default="demo",
        help="humanml3d, motionx: the authors' models, once `python -m engine models download official` fetched them",
    )
    model.add_argument(
        "--checkpoint", type=Path, help=f"model checkpoint (default: {DEMO_CHECKPOINT.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--random-model",
        action="store_true",
        help="development only: random weights when no trained demo model exists (the motion is noise)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--size", default="320x240", help="render size of one contact-sheet tile, WIDTHxHEIGHT")
    parser.add_argument("--sheet-frames", type=int, default=8, help="poses on the contact sheet")
    parser.add_argument("--gif-fps", type=float, default=10.0, help="frame rate of the GIF (0: no GIF)")
    parser.add_argument("--extension", type=Path, required=True, help="the built extension zip (build.py extension)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d+x\d+", args.size):
        parser.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    args.width, args.height = (int(value) for value in args.size.split("x"))
    if args.frames is not None:
        if args.frames % 4:
            parser.error(
                f"--frames {args.frames}: the model makes whole tokens of 4 frames; try {4 * round(args.frames / 4)}"
            )
        args.seconds = args.frames / 20.0
    if not 2.0 <= args.seconds <= 9.8:
        parser.error(f"a motion of {args.seconds:g} s: the model makes 2 to 9.8 s (40 to 196 frames at 20 fps)")
    args.name = args.name or slug(args.prompt)
    return args


def slug(prompt: str, limit: int = 40) -> str:
    """'A person walks forward, and waves!' -> 'a_person_walks_forward_and_waves'."""
    text = "_".join(re.findall(r"[a-z0-9]+", prompt.lower()))[:limit].rstrip("_")
    return text or "motion"


def choose_checkpoint(args: argparse.Namespace) -> tuple[Path, bool]:
    """The checkpoint to serve, and whether it is the trained demo model (whose captions we know)."""
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            sys.exit(f"demo: no checkpoint at {args.checkpoint}")
        return args.checkpoint, args.checkpoint.resolve() == DEMO_CHECKPOINT.resolve()
    if args.model != "demo":
        from engine import models

        path = models.installed_path(models.find_model(args.model), models.models_folder())
        if path is None:
            sys.exit(
                f"demo: the {args.model} model is not downloaded yet (looked in {models.models_folder()}).\n"
                "      Run `python -m engine models download official` in the environment build.py made, "
                "or Download Official Models in the add-on's preferences."
            )
        return path, False
    if DEMO_CHECKPOINT.is_file():
        return DEMO_CHECKPOINT, True
    if not args.random_model:
        sys.exit(
            f"demo: the trained demo model {DEMO_CHECKPOINT.relative_to(ROOT)} is not in this checkout yet.\n"
            "      Train it (docs/training.md), pass --checkpoint PATH, or, for development only, "
            "--random-model (random weights: the motion will be noise)."
        )
    from engine import checkpoint

    path = args.out / ".random-demo.pt"
    if not path.exists():
        checkpoint.create_random(path, preset="demo")
    say(f"NOTE: {DEMO_CHECKPOINT.relative_to(ROOT)} is missing; using RANDOM weights ({path}): the motion is noise")
    return path, False


def generate(addon, actor, args: argparse.Namespace, checkpoint: Path) -> bool:
    """Generate, then Bake, through the add-on's operators and its engine subprocess."""
    import bpy

    prefs = addon.preferences.get(bpy.context)
    prefs.engine_python, prefs.checkpoint, prefs.device = sys.executable, str(checkpoint), args.device
    scene = bpy.context.scene
    scene.frame_current = scene.frame_start = 1
    scene.mosa.prompt, scene.mosa.seconds, scene.mosa.seed = args.prompt, args.seconds, args.seed
    say("starting the engine (as when the panel first shows: it loads the model before the click)")
    try:
        started = time.perf_counter()
        loading = addon.engine_autostart.start(bpy.context)
        if loading is None:
            raise RuntimeError("the add-on did not start its engine (check the preferences)")
        loading.join()
        if not addon.engine_session.readiness.startswith("ready"):
            raise RuntimeError(f"the engine: {addon.engine_session.readiness}")
        engine_start_s = time.perf_counter() - started
        say(f"engine {addon.engine_session.readiness}; generating {args.seconds:.1f} s")
        clicked = time.perf_counter()
        bpy.ops.mosa.generate(synchronous=True)
        generate_s = time.perf_counter() - clicked
        client, _ = addon.engine_session.connect(prefs, addon.preferences.user_dir())
        generation_s = client.job(bpy.context.window_manager.mosa_session.jobs[-1].job_id)["elapsed_s"]
        say(f"generated {actor.rig.animation_data.action.name!r}; baking onto the rig")
        baking = time.perf_counter()
        bpy.ops.mosa.bake()
        bake_s = time.perf_counter() - baking
        blender_s = generate_s - generation_s + bake_s
        say(
            f"prompt to baked action: {engine_start_s + generate_s + bake_s:.2f} s = "
            f"engine start {engine_start_s:.2f} s + generation {generation_s:.2f} s (in the engine) + "
            f"Blender side {blender_s:.2f} s (retarget, keys, bake; HTTP and polling included)"
        )
    except RuntimeError as failure:  # an operator's error report, or the engine not starting
        say(f"FAILED: {failure}")
        return False
    finally:
        addon.engine_session.stop()
    return True


def render_pictures(args: argparse.Namespace, first: int, last: int) -> list[Path]:
    """The contact sheet (evenly spaced poses) and the GIF, from one batch of Workbench renders."""
    import numpy as np

    from demo import pictures, stage

    fps = bpy_scene_fps()
    sheet_frames = sorted({int(round(frame)) for frame in np.linspace(first, last, args.sheet_frames)})
    gif_step = max(1, round(fps / args.gif_fps)) if args.gif_fps > 0 else 0
    gif_frames = list(range(first, last + 1, gif_step)) if gif_step else []
    with tempfile.TemporaryDirectory(prefix="mosa-demo-frames-") as folder:
        frames = sorted(set(sheet_frames + gif_frames))
        rendered = dict(zip(frames, stage.render_frames(frames, Path(folder))))
        sheet_path = args.out / f"{args.name}_sheet.png"
        labels = [f"{(frame - first) / fps:.1f} s" for frame in sheet_frames]
        sheet = pictures.contact_sheet(
            [rendered[frame] for frame in sheet_frames],
            labels,
            columns=min(4, len(sheet_frames)),
            title=f'"{args.prompt}" (seed {args.seed})',
        )
        sheet.save(sheet_path)
        written = [sheet_path]
        if gif_frames:
            written.append(
                pictures.animated_gif(
                    [rendered[frame] for frame in gif_frames], args.out / f"{args.name}.gif", fps=fps / gif_step
                )
            )
    say(f"rendered {len(frames)} frames with Workbench")
    return written


def bpy_scene_fps() -> float:
    import bpy

    render = bpy.context.scene.render
    return render.fps / render.fps_base


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint, is_demo_model = choose_checkpoint(args)
    unfamiliar_note = ""  # said again at the end, where it cannot scroll away
    if is_demo_model:
        from demo.familiarity import familiarity, training_captions

        known = familiarity(args.prompt, training_captions())
        say(f'prompt "{args.prompt}": {known.note()}')
        unfamiliar_note = "" if known.familiar else f"NOTE: {known.note()}"
    # Blender reads its user folders once, when bpy is first imported: point them into a throwaway
    # folder first, so the demo never touches the user's own configuration.
    if "bpy" in sys.modules:
        raise RuntimeError("the demo must import bpy itself, after choosing Blender's user folders")
    with tempfile.TemporaryDirectory(prefix="mosa-demo-blender-") as user_folder:
        os.environ["BLENDER_USER_RESOURCES"] = user_folder
        return run_demo(args, checkpoint, Path(user_folder), unfamiliar_note)


def run_demo(args: argparse.Namespace, checkpoint: Path, user_folder: Path, closing_note: str = "") -> int:
    import bpy
    import numpy as np

    from demo import character, stage
    from demo.install import install_extension
    from retarget import bvh
    from retarget import motion as canonical_motion

    addon = install_extension(args.extension, user_folder / "repo")
    say(f"installed the extension {args.extension.name} as {addon.__name__}")
    bpy.ops.wm.read_homefile(use_empty=True)
    actor = character.build_character()
    say(f"built a Rigify human: {len(actor.rig.data.bones)} bones, a body of {len(actor.body.data.vertices)} vertices")
    if not generate(addon, actor, args, checkpoint):
        return 1

    scene, action = bpy.context.scene, actor.rig.animation_data.action
    first, last = (int(round(frame)) for frame in action.frame_range)
    scene.frame_start, scene.frame_end = first, last
    say(f"baked {action.name!r}: frames {first}..{last} at {bpy_scene_fps():g} fps")
    low, high = stage.motion_bounds(actor.rig, list(range(first, last + 1, 4)) + [last])
    stage.build_ground((low + high) / 2, half_size=max(3.0, float(np.max(high - low)) + 1.0))
    stage.frame_camera(low, high, args.width / args.height)
    stage.use_workbench(args.width, args.height)
    scene.frame_set(first)
    blend_path = (args.out / f"{args.name}.blend").resolve()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
    bvh_path = args.out / f"{args.name}.bvh"
    motion = canonical_motion.CanonicalMotion.from_dict(addon.vendored.packed.decode_motion(action["mosa"]["motion"]))
    bvh.write_bvh(bvh_path, motion)
    pictures = render_pictures(args, first, last)
    print("\nWrote:", *[f"  {path}" for path in (blend_path, bvh_path, *pictures)], sep="\n")
    print(
        f"\nOpen {blend_path} in Blender 4.2 or newer and press Space to play it;\n"
        f"the poses over time are in {pictures[0]}.",
        flush=True,
    )
    if closing_note:
        print(f"\n{closing_note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
