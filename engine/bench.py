"""`python -m engine bench`: seconds per generated sample, and peak memory, for both presets.

The workload is what a user's Generate costs: encode the prompts, run the 10 scales of the
SAR transformer with guidance, decode the latent and recover the joints, for 196 frames (9.8 s),
at batch 1 and at batch 32 (32 different prompts). Weights are random with the exact shapes of
each preset: the work does not depend on their values, and the official weights cannot ship.
The official preset's CLIP ViT-B/32 text tower is the full-size model too (random weights from
CLIPTextConfig's defaults, which are ViT-B/32's), fed 77 token ids, since CLIP's files are only
on a user's machine.

Each case runs in a fresh process, so its peak resident memory (RSS) is its own; on CUDA the
table also gives torch.cuda.max_memory_allocated.

A table times the Blender side of a Generate per stage (retarget, constraints, keying) on
a Mixamo-style rig and Rigify's generated human, and a 30-frame Regenerate Range
(demo/blender_bench.py, in a process of its own that imports bpy). Then the throughput of one
engine serving 8 clients at once (engine/bench_service.py), and, given the built extension
(`--extension`, as build.py bench passes it), Generate in Blender from prompt to keys: the first
click with and without the early start, and a second one (demo/first_generate.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from engine import bench_service
from engine.allocator import keep_freed_memory
from engine.validation import PRECISIONS
from retarget import canonical

FRAMES = canonical.MAX_FRAMES
BATCHES = (1, 32)
GPU_BATCHES = (1, 32, 256)
PRESETS = ("demo", "official")
PROMPT = "a person walks forward, turns around and waves with the right hand"
# Published figures for scale (mosa-spec.md section 6): per sample, on the authors' GPU.
PAPER_SECONDS = {"MoSa": 0.045, "MoMask": 0.062}


@dataclass
class Case:
    preset: str
    device: str
    batch: int
    threads: int
    repeats: int
    precision: str = "float32"


@dataclass
class Result:
    case: Case
    seconds_per_batch: float  # median over the repeats, after one warm-up run
    model_seconds_per_batch: float  # the same for sampling + decoding alone, text features given
    peak_rss_mb: float
    cuda_peak_mb: float | None
    parameters: dict[str, int]

    @property
    def seconds_per_sample(self) -> float:
        return self.seconds_per_batch / self.case.batch


class _ByteIds:
    """Stand-in for CLIP's BPE tokenizer: start token, one id per byte, end token (77 at most).

    Tokenizing is negligible next to the model; what counts is the 77 positions CLIP reads.
    """

    def __call__(self, prompt: str, truncation: bool, max_length: int) -> dict[str, list[int]]:
        start, end = 49406, 49407  # CLIP's <|startoftext|> and <|endoftext|>
        return {"input_ids": [start, *list(prompt.encode())[: max_length - 2], end]}


def text_encoder_for(preset: str, device):
    """The preset's text encoder: the real MiniLM for demo, a full-size random CLIP for official."""
    from engine.text_encoders import CLIP_TOKENS, TextEncoder, load_text_encoder

    if preset == "demo":
        return load_text_encoder("all-minilm-l6-v2", device)
    from transformers import CLIPTextConfig, CLIPTextModel

    return TextEncoder(
        "clip-vit-b32 (random weights)",
        CLIPTextModel(CLIPTextConfig()).to(device),
        _ByteIds(),
        CLIP_TOKENS,
        0,
        attend_to_padding=True,
    )


def run_case(case: Case) -> Result:
    """Time one case; runs in its own process (see measure)."""
    import torch

    from engine import checkpoint
    from engine.pipeline import GenerateRequest, Pipeline

    torch.set_num_threads(case.threads)
    device = torch.device(case.device)
    with tempfile.TemporaryDirectory() as folder:
        model = checkpoint.load(checkpoint.create_random(Path(folder) / "model.pt", case.preset))
    pipeline = Pipeline(
        model.tokenizer,
        model.transformer,
        text_encoder_for(case.preset, device),
        model.mean,
        model.std,
        device,
        name=f"random-{case.preset}",
        preset=case.preset,
        precision=case.precision,
    )
    requests = [GenerateRequest(f"{PROMPT} ({i + 1})", FRAMES, seed=i) for i in range(case.batch)]

    def once(batch: list[GenerateRequest]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        pipeline.generate_many(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    from engine.generate import sample

    text = pipeline.text_encoder.encode([r.prompt for r in requests]).to(device)
    lengths = torch.full((case.batch,), FRAMES, device=device)

    @torch.inference_mode()
    def model_once() -> float:
        generators = [torch.Generator(device=device).manual_seed(i) for i in range(case.batch)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with pipeline.autocast():
            _, z_hat = sample(
                model.transformer, model.tokenizer.quantizer, text, lengths, generators, requests[0].sampling
            )
        model.tokenizer.decode_latent(z_hat).cpu()
        return time.perf_counter() - started

    once(requests[:1])  # warm-up: first-call allocations and kernel choices
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(once(requests) for _ in range(case.repeats))
    model_seconds = statistics.median(model_once() for _ in range(case.repeats))
    cuda_peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Result(case, seconds, model_seconds, peak_rss, cuda_peak, pipeline.info["parameters"])


def measure(case: Case) -> Result:
    """run_case in a fresh process, so that the peak memory is this case's alone."""
    return in_own_process(run_case, case)


def cases(devices: list[str], threads: int, quick: bool) -> list[Case]:
    """CPU: float32 at batch 1 and 32; a GPU also at batch 256 and in half precision."""
    found = []
    for device in devices:
        gpu = device == "cuda"
        batches = (1,) if quick else GPU_BATCHES if gpu else BATCHES
        for precision in PRECISIONS if gpu else ("float32",):
            found += [
                Case(preset, device, batch, threads, repeats=3 if batch == 1 else 1, precision=precision)
                for preset in PRESETS
                for batch in batches
            ]
    return found


# A 30 s shot of four prompts (engine.timeline) on the committed demo model.
TIMELINE = (
    ("a person walks forward", 8.0),
    ("a person runs forward", 6.0),
    ("a person jumps forward", 8.0),
    ("a person waves with the right hand", 8.0),
)


def time_timeline(device: str, threads: int) -> tuple[float, float]:
    """(seconds, seconds of motion) for the TIMELINE shot on the demo model; runs in its own process."""
    import torch

    from engine.cli import DEFAULT_CHECKPOINT
    from engine.pipeline import Pipeline
    from engine.timeline import LongRequest, Segment, generate_long
    from engine.validation import frames_for_seconds

    torch.set_num_threads(threads)
    pipeline = Pipeline.load(DEFAULT_CHECKPOINT, device=device)
    request = LongRequest([Segment(prompt, frames_for_seconds(seconds)) for prompt, seconds in TIMELINE], seed=0)
    generate_long(pipeline, request)  # warm-up
    started = time.perf_counter()
    motion = generate_long(pipeline, request)
    return time.perf_counter() - started, motion.frames / motion.fps


def timeline_table(rows: list[tuple[str, float, float]]) -> str:
    lines = [
        "## A 30 s prompt timeline (4 prompts; the committed demo model)",
        "",
        "| device | s | s of motion | s per s of motion |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {device} | {seconds:.2f} | {motion:.1f} | {seconds / motion:.3f} |" for device, seconds, motion in rows
    ]
    return "\n".join(lines) + "\n"


def blender_side(repeats: int) -> str:
    """demo/blender_bench.py's table; runs in its own process (bpy, no torch)."""
    from demo import blender_bench

    return blender_bench.report(repeats)


def first_generate_table(archive: Path, cold_start: bool) -> str:
    """demo/first_generate.py's table; runs in its own process (bpy imported after its user folders are set)."""
    from demo import first_generate

    return first_generate.report(archive, cold_start)


def in_own_process(function, *args):
    """function(*args) in a fresh spawned process: its own memory, imports and threads, its allocator set as the CLI's."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn, initializer=keep_freed_memory) as pool:
        return pool.submit(function, *args).result()


def table(results: list[Result], notes: list[str]) -> str:
    lines = [
        f"# Generation speed ({FRAMES} frames per sample, 10 scales, guidance on; random weights of each preset's exact shapes)",
        "",
        "| preset | parameters (transformer + tokenizer) | device | precision | CPU threads | batch | model only s / sample | s / sample | s / batch | peak RSS | peak CUDA memory |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        params = f"{r.parameters['transformer'] / 1e6:.1f} M + {r.parameters['tokenizer'] / 1e6:.1f} M"
        cuda = f"{r.cuda_peak_mb:.0f} MB" if r.cuda_peak_mb is not None else "-"
        lines.append(
            f"| {r.case.preset} | {params} | {r.case.device} | {r.case.precision} | {r.case.threads} | {r.case.batch} | "
            f"{r.model_seconds_per_batch / r.case.batch:.3f} | {r.seconds_per_sample:.3f} | {r.seconds_per_batch:.2f} | {r.peak_rss_mb:.0f} MB | {cuda} |"
        )
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def notes(devices: list[str]) -> list[str]:
    import torch

    found = [
        f"machine: {cpu_name()} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end: "
        f"other work on the machine slows these figures), torch {torch.__version__}; "
        "model only = sampling + decoding, text features given; time = text encoding + sampling + decoding + joints, median of 3 runs at batch 1, 1 run at batch 32 (and 256 on a GPU), after a warm-up at batch 1",
        "official text encoder: CLIP ViT-B/32's text tower at full size with random weights (CLIP's files are not shipped)",
        "MoMask: `--momask DIR` (a checkout of EricGuo5513/momask-codes) times its own generation in the same run "
        "(last table, when given); a look-alike built from our code would time our code, not MoMask's. For scale, the papers "
        f"report {PAPER_SECONDS['MoSa']} s (MoSa) and {PAPER_SECONDS['MoMask']} s (MoMask) per sample on a GPU",
    ]
    if "cuda" not in devices:
        found.append("CUDA: no GPU on this machine, so no GPU rows")
    return found


def compare_momask(directory: Path, batch: int, threads: int, repeats: int) -> tuple[float, float]:
    """(engine, MoMask) model-only seconds per batch at official size, text features given.

    Both models live in one process and their runs alternate, so that load from other work on
    a shared machine falls on both alike; each figure is the median of `repeats` after a warm-up.
    """
    import torch

    from engine import checkpoint, momask_reference
    from engine.generate import SamplingOptions, sample

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        model = checkpoint.load(checkpoint.create_random(Path(folder) / "model.pt", "official"))
    transformer, tokenizer = model.transformer.eval(), model.tokenizer.eval()
    momask = momask_reference.load(directory, torch.device("cpu"))
    prompts = [f"{PROMPT} ({i + 1})" for i in range(batch)]
    text, clip_features = (
        torch.randn(batch, 77, transformer.config.text_dim),
        torch.randn(batch, momask_reference.CLIP_DIM),
    )
    lengths = torch.full((batch,), FRAMES)

    @torch.inference_mode()
    def engine_once() -> float:
        started = time.perf_counter()
        generators = [torch.Generator().manual_seed(i) for i in range(batch)]
        _, z_hat = sample(transformer, tokenizer.quantizer, text, lengths, generators, SamplingOptions())
        tokenizer.decode_latent(z_hat)
        return time.perf_counter() - started

    def momask_once() -> float:
        started = time.perf_counter()
        momask_reference.generate(momask, prompts, clip_features)
        return time.perf_counter() - started

    engine_once(), momask_once()  # warm-up
    pairs = [(engine_once(), momask_once()) for _ in range(repeats)]
    return statistics.median(e for e, _ in pairs), statistics.median(m for _, m in pairs)


def momask_table(rows: list[tuple[int, float, float]]) -> str:
    lines = [
        "## Against MoMask's released code (model only: text features given; official sizes, random weights)",
        "",
        "| batch | engine s / sample | MoMask s / sample | MoMask / engine |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {batch} | {engine / batch:.3f} | {momask / batch:.3f} | {momask / engine:.2f}x |"
        for batch, engine, momask in rows
    ]
    return "\n".join(lines) + "\n"


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--momask", type=Path, help="a checkout of EricGuo5513/momask-codes: time its generation beside the engine's"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="batch 1 only, no service or cold-start rows (a check, not the recorded run)",
    )
    parser.add_argument(
        "--extension",
        type=Path,
        help="the built extension zip: time Generate in Blender, prompt to keys (build.py bench)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for case in cases(devices, args.threads, args.quick):
        print(f"[bench] {case.preset} on {case.device} ({case.precision}), batch {case.batch} ...", flush=True)
        results.append(measure(case))
    report = table(results, notes(devices))
    timeline_rows = []
    for device in devices:
        print(f"[bench] 30 s timeline on {device} ...", flush=True)
        timeline_rows.append((device, *in_own_process(time_timeline, device, args.threads)))
    report += "\n" + timeline_table(timeline_rows)
    print("[bench] the Blender side on Mixamo-style and Rigify rigs ...", flush=True)
    report += "\n" + in_own_process(blender_side, 1 if args.quick else 3)
    if not args.quick:
        print(f"[bench] one engine, {bench_service.CLIENTS} clients at once ...", flush=True)
        report += "\n" + in_own_process(bench_service.report)
    if args.extension:
        print("[bench] Generate in Blender, prompt to keys ...", flush=True)
        report += "\n" + in_own_process(first_generate_table, args.extension, not args.quick)
    if args.momask:
        from engine.momask_reference import check_checkout

        directory, rows = check_checkout(args.momask), []
        for batch in (1,) if args.quick else BATCHES:
            print(f"[bench] engine against MoMask, batch {batch} ...", flush=True)
            rows.append(
                (batch, *in_own_process(compare_momask, directory, batch, args.threads, 5 if batch == 1 else 2))
            )
        report += "\n" + momask_table(rows)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0
