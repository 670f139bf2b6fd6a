"""`python -m engine generate|edit|extend|inbetween`: the service's jobs, from a shell.

A command line becomes the API request body of the job it asks for (engine.service.PARSERS), so
it goes through exactly the HTTP API's validation, and runs as the service runs that job. Every
check, and the check of the output files, comes before the model loads. The output format
follows the file extension (.npz, .bvh, .json); several samples are written as numbered files
(walk_1.bvh, ...). An output file that exists is replaced only with --overwrite, and never when
it is the source; every file is written beside its place first, then moved there whole. `generate` with `--prompt` and `--seconds` repeated (or `--timeline FILE.json`,
a list of {"prompt", "seconds"}) makes one motion of any length, window by window
(engine.timeline). A source at another frame rate is resampled to the engine's 20 fps first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import validation
from engine.validation import Limits, RequestError
from retarget import canonical

if TYPE_CHECKING:  # retarget.motion loads numpy with the command that needs it
    from retarget.motion import CanonicalMotion

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo.pt"
FORMATS = (".npz", ".bvh", ".json")
LONG_COMMANDS = ("extend", "inbetween")
MAX_WINDOW_FRAMES = validation.Limits().max_frames  # what one run of the model makes


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        default="float32",
        choices=validation.PRECISIONS,
        help="the sampling loop's number type: half precision is for GPUs (slower on most CPUs)",
    )


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    source_help = "the motion to edit" if command == "edit" else "the motion to extend"
    if command == "inbetween":
        source_help = "the motion whose key poses to pass through"
    source_help += " (.npz, .bvh or .json); one at another frame rate is resampled to 20 fps"
    if command == "generate":
        parser.add_argument(
            "--prompt",
            action="append",
            help="what the motion should show; repeat it with --seconds for a timeline of prompts",
        )
        length = parser.add_mutually_exclusive_group()
        length.add_argument(
            "--seconds", type=float, action="append", help="length in seconds (default 4); one per --prompt"
        )
        length.add_argument(
            "--frames",
            type=int,
            default=None,
            help=f"length in frames at 20 fps, a multiple of {canonical.FRAMES_PER_LATENT}",
        )
        parser.add_argument(
            "--timeline", type=Path, help='a JSON list of {"prompt": ..., "seconds": ...} rows instead of --prompt'
        )
    elif command == "edit":
        parser.add_argument("--prompt", required=True, help="what the regenerated frames should show")
        parser.add_argument("--source", required=True, help=source_help)
        parser.add_argument(
            "--frames",
            required=True,
            metavar="START:END",
            help="frames to regenerate at 20 fps, END exclusive, e.g. 40:80",
        )
    else:
        parser.add_argument("--source", required=True, help=source_help)
        parser.add_argument("--prompt", required=True, action="append", help="what the new frames should show")
    if command == "extend":
        parser.add_argument(
            "--seconds", required=True, type=float, action="append", help="seconds to add; one per --prompt"
        )
        parser.add_argument(
            "--before", action="store_true", help="add the frames before the source instead of after it"
        )
    elif command == "inbetween":
        parser.add_argument(
            "--keys", required=True, help="key frames of the source (at 20 fps) to pass through, e.g. 0,40,80"
        )
    parser.add_argument(
        "--out", required=True, help=f"output file; the extension picks the format ({', '.join(FORMATS)})"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output files that exist (never the --source file)"
    )
    parser.add_argument("--seed", type=int, default=0)
    if command in ("generate", "edit"):
        parser.add_argument(
            "--samples", type=int, default=1, help="motions to make, written as numbered files (walk_1.bvh, ...)"
        )
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=float, help="fraction of codes dropped before sampling")
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--smooth", action="store_true", help="Gumbel-softmax mix of codes instead of one code")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from engine.service import PARSERS, RUNS

    try:
        kind, body = request_body(args)
        request = PARSERS[kind](body, Limits())
        outputs = output_paths(Path(args.out), getattr(request, "samples", 1))
        check_outputs(outputs, getattr(args, "source", None), args.overwrite)
    except (RequestError, OSError, ValueError) as exc:  # a bad file, key list, length or number
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from engine.pipeline import Pipeline

    started = time.monotonic()
    try:
        pipeline = Pipeline.load(args.checkpoint, device=args.device, precision=args.precision)
    except (OSError, ValueError) as exc:  # a missing, corrupt or mismatched checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"loaded {pipeline.info.get('model')} on {pipeline.info.get('device')} in {time.monotonic() - started:.1f} s",
        flush=True,
    )

    def report(progress) -> None:
        print(f"scale {progress.step}/{progress.total}", flush=True)

    started = time.monotonic()
    try:
        motions = RUNS[kind](pipeline, request, report, None)
    except ValueError as exc:  # what only the model's run finds wrong with the request
        print(f"error: {exc}", file=sys.stderr)
        return 2
    frames = motions[0].frames
    print(
        f"{len(motions)} motion(s) of {frames} frames ({frames / canonical.FPS:.1f} s) "
        f"in {time.monotonic() - started:.2f} s",
        flush=True,
    )
    for path, motion in zip(outputs, motions):
        try:
            write_motion(motion, path)
        except OSError as exc:  # what check_outputs cannot foresee: a full disk, a file without write permission
            print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0


# --- the command line as an API request ----------------------------------------------------------------------------
def request_body(args: argparse.Namespace) -> tuple[str, dict]:
    """The job a command line asks for: its kind (a key of engine.service.PARSERS) and its JSON-like body."""
    body = {"seed": args.seed, "smooth": args.smooth}
    for name in ("guidance", "temperature", "top_k", "top_p"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.command == "generate":
        if is_timeline(args):
            return "timeline", {**body, "segments": timeline_rows(args)}
        if not args.prompt:
            raise RequestError("bad_prompt", "give --prompt (or --timeline FILE.json)")
        length = {"frames": args.frames} if args.frames is not None else {"seconds": (args.seconds or [4.0])[0]}
        return "generate", {**body, "prompt": args.prompt[0], "samples": args.samples, **length}
    source = read_source(Path(args.source))
    if args.command == "edit":
        mask = frame_span_mask(args.frames, source.frames)
        return "edit", {
            **body,
            "prompt": args.prompt,
            "samples": args.samples,
            "source": wire(source),
            "frame_mask": mask,
        }
    if args.command == "extend":
        side = "before" if args.before else "after"
        return "timeline", {**body, "segments": timeline_rows(args), "source": wire(source), "side": side}
    if len(args.prompt) > 1:
        raise RequestError("bad_prompt", "inbetween makes one stretch of motion: give one --prompt")
    keys = key_frames(args.keys)
    return "inbetween", {**body, "prompt": args.prompt[0], "source": wire(source), "key_frames": keys}


def is_timeline(args: argparse.Namespace) -> bool:
    """A generate request that one window cannot make: several prompts, a timeline file, or over 9.8 s."""
    seconds = args.seconds or []
    return (
        bool(args.timeline)
        or len(args.prompt or []) > 1
        or len(seconds) > 1
        or any(s * canonical.FPS > MAX_WINDOW_FRAMES for s in seconds)
    )


def timeline_rows(args: argparse.Namespace) -> list:
    """The {"prompt", "seconds"} rows of a timeline from repeated --prompt/--seconds or a JSON file;
    the options a timeline cannot honour are refused rather than ignored."""
    if getattr(args, "samples", 1) != 1:
        raise RequestError(
            "bad_samples",
            f"--samples {args.samples}: a timeline makes one motion; run it again with another --seed for another take",
        )
    if getattr(args, "frames", None) is not None:
        raise RequestError("bad_length", "--frames sets one window's length; give each --prompt its --seconds instead")
    if getattr(args, "timeline", None) is not None:
        if args.prompt or args.seconds:
            raise RequestError(
                "bad_timeline",
                f"--timeline {args.timeline} holds the prompts and their seconds; drop --prompt and --seconds",
            )
        return read_json(args.timeline, "--timeline")
    prompts, seconds = args.prompt or [], args.seconds or []
    if len(seconds) != len(prompts):
        raise RequestError(
            "bad_timeline", f"{len(prompts)} --prompt but {len(seconds)} --seconds; give one length per prompt"
        )
    return [{"prompt": prompt, "seconds": length} for prompt, length in zip(prompts, seconds)]


def frame_span_mask(span: str, frames: int) -> list[bool]:
    """'40:80' to a mask that is true on frames 40..79."""
    try:
        start_text, end_text = span.split(":")
        start, end = int(start_text or 0), int(end_text or frames)
    except ValueError:
        raise RequestError("bad_frame_mask", f"--frames {span!r} must look like START:END, e.g. 40:80") from None
    if not 0 <= start < end <= frames:
        raise RequestError("bad_frame_mask", f"--frames {span} must lie within 0:{frames} with START < END")
    return [start <= frame < end for frame in range(frames)]


def key_frames(text: str) -> list[int]:
    """'0,40,80' to [0, 40, 80]."""
    try:
        return [int(key) for key in text.split(",")]
    except ValueError:
        raise RequestError(
            "bad_key_frames", f"--keys {text!r} must be frame numbers separated by commas, e.g. 0,40,80"
        ) from None


# --- files -----------------------------------------------------------------------------------------------------------
def read_json(path: Path, option: str) -> Any:
    """A JSON file named on the command line, its nesting checked as the API checks a body's (a file
    of 100000 '[' is a clear error, not the parser's RecursionError)."""
    return validation.load_json(path.read_bytes(), Limits(), what=f"{option} {path}")


def read_motion(path: Path) -> CanonicalMotion:
    from retarget.motion import CanonicalMotion

    suffix = path.suffix.lower()
    if suffix == ".npz":
        return CanonicalMotion.load(path)
    if suffix == ".json":
        data = read_json(path, "--source")
        try:
            return CanonicalMotion.from_dict(data)
        except ValueError as error:  # a field of the wrong shape or type
            raise RequestError("bad_source", f"--source {path}: {error}") from None
    if suffix == ".bvh":
        from retarget import bvh

        return bvh.read_bvh(path)
    raise RequestError("bad_source", f"--source {path} must end in one of {', '.join(FORMATS)}")


def read_source(path: Path) -> CanonicalMotion:
    """The source motion at the engine's 20 fps: a file at another rate (a 30 fps BVH, a 240 fps capture)
    was read as if at 20 fps, slowed down or sped up, so it is resampled, and says so."""
    from retarget.resample import resample_motion

    motion = read_motion(path)
    if abs(motion.fps - canonical.FPS) < 1e-6:  # a rate stored as float32, or a BVH's rounded frame time
        motion.fps = float(canonical.FPS)
        return motion
    resampled = resample_motion(motion, canonical.FPS)
    print(
        f"--source {path} is at {motion.fps:g} fps: resampled to {canonical.FPS} fps "
        f"({motion.frames} -> {resampled.frames} frames); --frames and --keys count frames at {canonical.FPS} fps",
        flush=True,
    )
    return resampled


def wire(motion: CanonicalMotion) -> dict:
    """What a request's source needs of a motion, as JSON would carry it: positions, and its own
    feature rows when it has them (an edit keeps them exactly)."""
    source = {"fps": motion.fps, "positions": motion.positions.tolist()}
    if motion.features is not None:
        source["features"] = motion.features.tolist()
    return source


def file_problem(path: Path, example: str) -> str | None:
    """Why a file cannot be written at `path`, as words that follow the path, or None: a folder is
    there (`example` names a file to put in it), a file stands where a folder must be, or the
    folder it goes in is read-only."""
    if path.is_dir():
        return f"is a folder; give a file name in it, e.g. {path / example}"
    parent = next(folder for folder in path.absolute().parents if folder.exists())
    if not parent.is_dir():
        return f"cannot be made: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK):
        return f"cannot be written: the folder {parent} is read-only"
    return None


def output_paths(out: Path, count: int) -> list[Path]:
    """One path for one sample; numbered siblings (walk_1.bvh, walk_2.bvh) for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{index}{out.suffix}") for index in range(1, count + 1)]


def check_outputs(paths: list[Path], source: str | None, overwrite: bool) -> None:
    """Refuse, before the model loads, output files that cannot be written, that are the source, or
    that exist (unless `overwrite`): the user's files are never replaced by surprise."""
    for path in paths:
        if problem := file_problem(path, "motion" + (path.suffix if path.suffix.lower() in FORMATS else ".bvh")):
            raise RequestError("bad_out", f"--out {path} {problem}")
        if path.suffix.lower() not in FORMATS:
            raise RequestError("bad_out", f"--out {path} must end in one of {', '.join(FORMATS)}")
        if source is not None and same_file(path, Path(source)):
            raise RequestError("bad_out", f"--out {path} is the --source file; write the result to another file")
    existing = [str(path) for path in paths if path.exists()]
    if existing and not overwrite:
        raise RequestError(
            "bad_out", f"--out would replace {', '.join(existing)}; add --overwrite to replace, or choose another --out"
        )


def same_file(path: Path, other: Path) -> bool:
    """Whether two paths name one file: the same path once resolved (links, '..'), or a hard link."""
    if path.resolve() == other.resolve():
        return True
    try:
        return path.exists() and other.exists() and path.samefile(other)
    except OSError:
        return False


def write_motion(motion: CanonicalMotion, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        write_atomically(path, motion.save)
    elif suffix == ".json":
        write_atomically(path, lambda part: part.write_text(json.dumps(motion.to_dict())))
    else:
        from retarget import bvh

        write_atomically(path, lambda part: bvh.write_bvh(part, motion))


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write` into a new file beside `path`, then that file becomes `path` in one step: a file
    replaced with --overwrite is never left half-written (a failure, Ctrl+C, a full disk). A link
    is written through, and a replaced file keeps its mode."""
    path = path.resolve()
    part = path.with_name(f".{path.name}.{os.getpid()}.part")  # made by `write`: the user's file mode
    try:
        write(part)
        if path.exists():
            shutil.copymode(path, part)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
