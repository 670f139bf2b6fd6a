"""`python -m engine generate|edit|extend|inbetween`: the service's jobs, from a shell.

Requests go through the same validation as the HTTP API. The output format follows the file
extension (.npz, .bvh, .json); several samples are written as numbered files (walk_1.bvh, ...).
`generate` with `--prompt` and `--seconds` repeated (or `--timeline FILE.json`, a list of
{"prompt", "seconds"}) makes one motion of any length, window by window (engine.timeline).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine import validation
from engine.validation import Limits, RequestError
from retarget import canonical

if TYPE_CHECKING:  # numpy loads with the command that needs it
    import numpy as np

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo.pt"
FORMATS = (".npz", ".bvh", ".json")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        default="float32",
        choices=validation.PRECISIONS,
        help="the sampling loop's number type: half precision is for GPUs (slower on most CPUs)",
    )


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    if command in LONG_COMMANDS:
        configure_long(parser, command)
        return
    parser.add_argument(
        "--prompt",
        action="append",
        help="what the motion should show; repeat it with --seconds for a timeline of prompts",
    )
    if command == "generate":
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
    else:
        parser.add_argument("--source", required=True, help="the motion to edit (.npz, .bvh or .json)")
        parser.add_argument(
            "--frames", required=True, metavar="START:END", help="frames to regenerate, END exclusive, e.g. 40:80"
        )
    parser.add_argument(
        "--out", required=True, help=f"output file; the extension picks the format ({', '.join(FORMATS)})"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=float, help="fraction of codes dropped before sampling")
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--smooth", action="store_true", help="Gumbel-softmax mix of codes instead of one code")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.command in LONG_COMMANDS or is_timeline(args):
        return run_long(args)
    if not args.prompt:
        print("error: give --prompt (or --timeline FILE.json)", file=sys.stderr)
        return 2
    args.prompt = args.prompt[0]
    if args.command == "generate":
        args.seconds = args.seconds[0] if args.seconds else None
    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        print(f"error: --out {out} must end in one of {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    try:
        body = _request_body(args)
        parse = validation.parse_generate if args.command == "generate" else validation.parse_edit
        request = parse(body, Limits())
    except (RequestError, OSError, ValueError) as exc:  # a bad source file, frame span or number
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
    run_request = pipeline.generate if args.command == "generate" else pipeline.edit
    motions = run_request(request, on_progress=report)
    print(f"{len(motions)} sample(s) in {time.monotonic() - started:.2f} s", flush=True)
    for path, motion in zip(output_paths(out, len(motions)), motions):
        write_motion(motion, path)
        print(f"wrote {path}")
    return 0


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


def write_motion(motion, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        motion.save(path)
    elif suffix == ".json":
        path.write_text(json.dumps(motion.to_dict()))
    else:
        from retarget import bvh

        bvh.write_bvh(path, motion)


def read_motion(path: Path):
    from retarget.motion import CanonicalMotion

    suffix = path.suffix.lower()
    if suffix == ".npz":
        return CanonicalMotion.load(path)
    if suffix == ".json":
        return CanonicalMotion.from_dict(json.loads(path.read_text()))
    if suffix == ".bvh":
        from retarget import bvh

        return bvh.read_bvh(path)
    raise RequestError("bad_source", f"--source {path} must end in one of {', '.join(FORMATS)}")


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


def _request_body(args: argparse.Namespace) -> dict:
    body = {"prompt": args.prompt, "seed": args.seed, "samples": args.samples, "smooth": args.smooth}
    for name in ("guidance", "temperature", "top_k", "top_p"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.command == "generate":
        if args.frames is not None:
            body["frames"] = args.frames
        else:
            body["seconds"] = 4.0 if args.seconds is None else args.seconds
        return body
    source = read_motion(Path(args.source))
    body["source"] = source.to_dict()
    body["frame_mask"] = frame_span_mask(args.frames, len(source.positions))
    return body


# --- motions longer than one window (engine.timeline) --------------------------------------------------------------
LONG_COMMANDS = ("extend", "inbetween")
MAX_WINDOW_FRAMES = validation.Limits().max_frames  # what one run of the model makes


def is_timeline(args: argparse.Namespace) -> bool:
    """A generate request that one window cannot make: several prompts, a timeline file, or over 9.8 s."""
    if args.command != "generate":
        return False
    seconds = args.seconds or []
    return (
        bool(args.timeline)
        or len(args.prompt or []) > 1
        or len(seconds) > 1
        or any(s * 20 > MAX_WINDOW_FRAMES for s in seconds)
    )


def configure_long(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--source", required=True, help="the motion to extend or key (.npz, .bvh or .json)")
    parser.add_argument("--prompt", required=True, action="append", help="what the new frames should show")
    if command == "extend":
        parser.add_argument(
            "--seconds", required=True, type=float, action="append", help="seconds to add; one per --prompt"
        )
        parser.add_argument(
            "--before", action="store_true", help="add the frames before the source instead of after it"
        )
    else:
        parser.add_argument("--keys", required=True, help="key frames of the source to pass through, e.g. 0,40,80")
    parser.add_argument(
        "--out", required=True, help=f"output file; the extension picks the format ({', '.join(FORMATS)})"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_precision_argument(parser)


def shot_segments(prompts: list[str], seconds: list[float] | None, timeline: Path | None) -> list:
    """The (prompt, frames) rows of a timeline from repeated --prompt/--seconds or a JSON file."""
    if timeline is not None:
        try:
            rows = json.loads(timeline.read_text())
        except (OSError, ValueError) as exc:
            raise RequestError(
                "bad_timeline",
                f'--timeline {timeline}: expected a JSON list of {{"prompt": ..., "seconds": ...}} rows ({exc})',
            ) from None
    else:
        if not seconds or len(seconds) != len(prompts):
            raise RequestError(
                "bad_timeline",
                f"{len(prompts)} --prompt but {len(seconds or [])} --seconds; give one length per prompt",
            )
        rows = [{"prompt": prompt, "seconds": length} for prompt, length in zip(prompts, seconds)]
    return validation.timeline_segments(rows, Limits())


def source_rows(motion) -> np.ndarray:
    """One raw feature row per frame of a motion read from a file (its own rows when it has them)."""
    import numpy as np

    from engine.representation import joints_to_features

    features = motion.features if motion.features is not None else joints_to_features(motion.positions)
    return np.concatenate([features, features[-1:]]) if len(features) < motion.frames else features


def run_long(args: argparse.Namespace) -> int:
    from engine.pipeline import Pipeline
    from engine.timeline import LongRequest, generate_long, inbetween

    out = Path(args.out)
    try:
        if out.suffix.lower() not in FORMATS:
            raise RequestError("bad_out", f"--out {out} must end in one of {', '.join(FORMATS)}")
        source = read_motion(Path(args.source)) if args.command in LONG_COMMANDS else None
        if args.command == "inbetween":
            keys = [int(key) for key in args.keys.split(",")]
        else:
            segments = shot_segments(args.prompt or [], args.seconds, getattr(args, "timeline", None))
        pipeline = Pipeline.load(args.checkpoint, device=args.device, precision=args.precision)
        started = time.monotonic()
        if args.command == "inbetween":
            motion = inbetween(pipeline, source, keys, " ".join(args.prompt), seed=args.seed)
        else:
            features = None if source is None else source_rows(source)
            side = "before" if getattr(args, "before", False) else "after"
            motion = generate_long(
                pipeline,
                LongRequest(segments, features, side, None if source is None else source.positions, seed=args.seed),
                on_progress=lambda p: print(f"scale {p.step}/{p.total}", flush=True),
            )
    except (RequestError, OSError, ValueError) as exc:  # a bad file, key list, length or checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{motion.frames} frames ({motion.frames / 20:.1f} s) in {time.monotonic() - started:.2f} s", flush=True)
    write_motion(motion, out)
    print(f"wrote {out}")
    return 0
