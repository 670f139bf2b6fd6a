"""`python -m engine generate` and `python -m engine edit`: the service's jobs, from a shell.

Requests go through the same validation as the HTTP API. The output format follows the file
extension (.npz, .bvh, .json); several samples are written as numbered files (walk_1.bvh, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine import validation
from engine.validation import Limits, RequestError

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo.pt"
FORMATS = (".npz", ".bvh", ".json")


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--prompt", required=True, help="what the motion should show")
    if command == "generate":
        length = parser.add_mutually_exclusive_group()
        length.add_argument("--seconds", type=float, default=None, help="length in seconds (default 4)")
        length.add_argument("--frames", type=int, default=None, help=f"length in frames at 20 fps, a multiple of {validation.FRAMES_PER_TOKEN}")
    else:
        parser.add_argument("--source", required=True, help="the motion to edit (.npz, .bvh or .json)")
        parser.add_argument("--frames", required=True, metavar="START:END", help="frames to regenerate, END exclusive, e.g. 40:80")
    parser.add_argument("--out", required=True, help=f"output file; the extension picks the format ({', '.join(FORMATS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=float, help="fraction of codes dropped before sampling")
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--smooth", action="store_true", help="Gumbel-softmax mix of codes instead of one code")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
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
        pipeline = Pipeline.load(args.checkpoint, device=args.device)
    except (OSError, ValueError) as exc:  # a missing, corrupt or mismatched checkpoint
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {pipeline.info.get('model')} on {pipeline.info.get('device')} in {time.monotonic() - started:.1f} s", flush=True)

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
