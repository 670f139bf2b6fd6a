"""`python -m engine import-official MoSa.zip`: the authors' released models -> one engine checkpoint.

The archive holds checkpoints/<t2m|motionx>/<run>/ folders (mosa-spec.md section 5). The
transformer run (its opt.txt has latent_dim) names its tokenizer run (vq_name); the tokenizer run holds the feature
statistics (meta/mean.npy, meta/std.npy). Both models are rebuilt from their opt.txt values and
loaded with strict=True, so a file that does not match the official layout fails with the key
and both shapes instead of loading into a wrong model.

Files are read with torch.load(weights_only=True): an archive from the internet cannot run code.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from engine import checkpoint
from engine.tokenizer import Tokenizer, TokenizerConfig
from engine.transformer import Transformer, TransformerConfig

DATASETS = {"t2m": "HumanML3D", "motionx": "Motion-X"}
OPTIONS_START = "------------ Options -------------"
OPTIONS_END = "-------------- End ----------------"
MODEL_FILE = "model/net_best_fid.tar"
TEXT_ENCODER = "clip-vit-b32"  # the released transformers read CLIP ViT-B/32 token features
TOKENIZER_STATE_KEYS = ("vq_model", "net")
TRANSFORMER_STATE_KEYS = ("t2m_transformer", "trans")
# opt.txt names -> TokenizerConfig fields (the rest of opt.txt is training bookkeeping)
TOKENIZER_OPTIONS = {
    "width": "width",
    "width_mul": "width_mul",
    "depth": "depth",
    "code_dim": "code_dim",
    "scales": "scales",
    "nb_code_st": "nb_code_st",
    "nb_code_ed": "nb_code_ed",
    "phi_k": "phi_k",
    "phi_depth": "phi_depth",
    "mu": "mu",
    "slot_group": "slot_group",
}
TRANSFORMER_OPTIONS = {
    "latent_dim": "d_model",
    "n_heads": "n_heads",
    "n_layers": "n_layers",
    "ff_size": "ff_size",
    "dropout": "dropout",
    "cond_drop_prob": "cond_drop_prob",
}


def parse_options(text: str, source: str) -> dict:
    """opt.txt -> dict: one `key: value` a line between the marker lines; Python literals where they parse."""
    lines = text.splitlines()
    try:
        start, end = lines.index(OPTIONS_START), lines.index(OPTIONS_END)
    except ValueError:
        raise ValueError(
            f"{source} has no options block (expected the lines {OPTIONS_START!r} and {OPTIONS_END!r})"
        ) from None
    options = {}
    for line in lines[start + 1 : end]:
        key, separator, value = line.partition(": ")
        if not separator:
            key, value = line.rstrip(":"), ""
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return options


@dataclass
class Run:
    """One training run folder inside the archive."""

    name: str
    folder: str  # archive path of the run folder, ending in "/"
    options: dict


class Archive:
    """The official zip, read in place."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}; expected the official MoSa.zip")
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise ValueError(f"{path} is not a readable zip archive ({error})") from None
        self.path = path
        self.names = set(self.zip.namelist())

    def runs(self, dataset: str) -> dict[str, Run]:
        """The runs of checkpoints/<dataset>/, wherever that folder sits in the archive."""
        runs = {}
        for name in sorted(self.names):
            parts = PurePosixPath(name).parts
            for i in range(len(parts) - 3):
                if parts[i : i + 2] == ("checkpoints", dataset) and parts[i + 3 :] == ("opt.txt",):
                    folder = "/".join(parts[: i + 3]) + "/"
                    runs[parts[i + 2]] = Run(parts[i + 2], folder, parse_options(self.read_text(name), name))
        return runs

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise ValueError(f"{self.path} lacks {name}")
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as error:  # damaged member data
            raise ValueError(f"{self.path}: cannot read {name} ({error})") from None

    def read_text(self, name: str) -> str:
        return self.read(name).decode("utf-8")

    def read_array(self, name: str) -> np.ndarray:
        try:
            return np.load(io.BytesIO(self.read(name)), allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{self.path}: {name} is not a numpy array file ({error})") from None

    def read_state(self, name: str, keys: tuple[str, ...]) -> tuple[dict, dict]:
        """(state_dict under the first of `keys` present, the rest of the file's dict)."""
        data = self.read(name)
        try:
            content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for damaged or unsafe files
            raise ValueError(
                f"{self.path}: {name} is not a readable weights file ({type(error).__name__}: {error})"
            ) from None
        if not isinstance(content, dict):
            raise ValueError(
                f"{self.path}: {name} holds a {type(content).__name__}; expected a dict with one of {list(keys)}"
            )
        for key in keys:
            if key in content:
                return dict(content[key]), {k: v for k, v in content.items() if isinstance(v, (int, float, str))}
        raise ValueError(f"{self.path}: {name} has entries {sorted(content)}; expected one of {list(keys)}")


def transformer_run(runs: dict[str, Run], dataset: str, name: str | None) -> Run:
    """The transformer run: the one given, else the only one.

    Both kinds of opt.txt carry vq_name (the tokenizer options define it too), so a transformer
    run is told by what only the transformer options define: latent_dim.
    """
    candidates = {run.name: run for run in runs.values() if "latent_dim" in run.options and "vq_name" in run.options}
    if name is not None:
        if name not in candidates:
            raise ValueError(f"no transformer run {name!r} for {dataset}; found {sorted(candidates)}")
        return candidates[name]
    if len(candidates) != 1:
        raise ValueError(
            f"expected one transformer run (an opt.txt with latent_dim and vq_name) for {dataset}, "
            f"found {sorted(candidates)}; choose one with --run"
        )
    return next(iter(candidates.values()))


def tokenizer_config(options: dict, source: str) -> TokenizerConfig:
    if options.get("using_znorm", True) is not True:
        raise ValueError(
            f"{source}: using_znorm is {options['using_znorm']!r}; only the l2 (cosine) code lookup of the release is supported"
        )
    if options.get("shared_codebook", False) is not False:
        raise ValueError(
            f"{source}: shared_codebook is {options['shared_codebook']!r}; the release uses one codebook per scale"
        )
    return TokenizerConfig(**_fields(options, TOKENIZER_OPTIONS, TokenizerConfig.official(), source))


def transformer_config(options: dict, tokenizer: TokenizerConfig, source: str) -> TransformerConfig:
    if options.get("mm_attn", False) is not False:
        raise ValueError(
            f"{source}: mm_attn is {options['mm_attn']!r}; only the released block (mm_attn False) is supported"
        )
    frames = options.get("max_motion_length", tokenizer.max_frames)
    if frames != tokenizer.max_frames:
        raise ValueError(
            f"{source}: max_motion_length is {frames!r}; the tokenizer works on {tokenizer.max_frames} frames"
        )
    official = TransformerConfig.official(tokenizer)
    return replace(official, **_fields(options, TRANSFORMER_OPTIONS, official, source))


def _fields(options: dict, names: dict[str, str], defaults, source: str) -> dict:
    """Config fields from opt.txt values; a missing value keeps the official preset's."""
    fields = {}
    for option, field_name in names.items():
        value = options.get(option, getattr(defaults, field_name))
        expected = type(getattr(defaults, field_name))
        if expected is float and isinstance(value, int):
            value = float(value)
        if expected is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, expected):
            raise ValueError(f"{source}: {option} is {value!r}; expected a {expected.__name__}")
        fields[field_name] = value
    return fields


def import_official(archive_path: str | Path, dataset: str = "t2m", run: str | None = None) -> checkpoint.Checkpoint:
    """Read one dataset's models from the official archive into an engine Checkpoint."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(DATASETS)}")
    archive = Archive(Path(archive_path))
    runs = archive.runs(dataset)
    if not runs:
        raise ValueError(f"{archive.path} has no checkpoints/{dataset}/<run>/opt.txt; is this the official MoSa.zip?")
    transformer_run_ = transformer_run(runs, dataset, run)
    vq_name = transformer_run_.options["vq_name"]
    if vq_name not in runs:
        raise ValueError(
            f"transformer run {transformer_run_.name!r} names tokenizer run {vq_name!r}, which is not in checkpoints/{dataset}/ (found {sorted(runs)})"
        )
    tokenizer_run = runs[vq_name]

    tokenizer = Tokenizer(tokenizer_config(tokenizer_run.options, tokenizer_run.folder + "opt.txt"))
    tokenizer_state, tokenizer_info = archive.read_state(tokenizer_run.folder + MODEL_FILE, TOKENIZER_STATE_KEYS)
    checkpoint.load_state_strict(tokenizer, tokenizer_state, tokenizer_run.folder + MODEL_FILE)

    transformer = Transformer(
        transformer_config(transformer_run_.options, tokenizer.config, transformer_run_.folder + "opt.txt")
    )
    transformer_state, transformer_info = archive.read_state(
        transformer_run_.folder + MODEL_FILE, TRANSFORMER_STATE_KEYS
    )
    transformer_state = {
        k: v for k, v in transformer_state.items() if not k.startswith("clip_model.")
    }  # CLIP is loaded separately
    checkpoint.load_state_strict(transformer, transformer_state, transformer_run_.folder + MODEL_FILE)

    feature_dim = tokenizer.config.feature_dim
    statistics = {}
    for name in ("mean", "std"):
        member = f"{tokenizer_run.folder}meta/{name}.npy"
        values = archive.read_array(member)
        if values.shape != (feature_dim,):
            raise ValueError(f"{archive.path}: {member} has shape {values.shape}; expected ({feature_dim},)")
        statistics[name] = values.astype(np.float32)  # std already carries the feature bias
    meta = {
        "name": f"mosa-official-{dataset}",
        "preset": "official",
        "dataset": DATASETS[dataset],
        "source": archive.path.name,
        "tokenizer_run": {"name": tokenizer_run.name, **tokenizer_info},
        "transformer_run": {"name": transformer_run_.name, **transformer_info},
    }
    return checkpoint.Checkpoint(
        tokenizer.eval(), transformer.eval(), statistics["mean"], statistics["std"], TEXT_ENCODER, meta
    )


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("archive", type=Path, help="the authors' MoSa.zip")
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), default="t2m", help="t2m (HumanML3D) or motionx (Motion-X)"
    )
    parser.add_argument("--run", default=None, help="the transformer run to import, when the archive holds several")
    parser.add_argument("--out", type=Path, required=True, help="the engine checkpoint to write")
    parser.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")


def out_problem(out: Path, overwrite: bool) -> str | None:
    """Why --out cannot be written, checked before the import reads the archive: a folder, a read-only
    place, or a file that is there (the user's file is never replaced by surprise)."""
    from engine.cli import file_problem

    if problem := file_problem(out, "mosa-t2m.pt"):
        return f"--out {out} {problem}"
    if out.exists() and not overwrite:
        return f"--out would replace {out}; add --overwrite to replace, or choose another --out"
    return None


def save(out: Path, imported: checkpoint.Checkpoint) -> None:
    """checkpoint.save (which leaves no partial file when the write fails), a full disk told as an
    OSError that says so (torch reports a failed write as a RuntimeError)."""
    import shutil

    from engine.models import NO_ROOM, human_bytes

    try:
        checkpoint.save(out, imported)
        return
    except (RuntimeError, OSError) as error:  # left before measuring: its traceback holds the file open
        code, said = (
            getattr(error, "errno", None),
            (error.strerror if isinstance(error, OSError) else None) or str(error),
        )
    folder = out.absolute().parent
    needed = sum(
        t.numel() * t.element_size()
        for module in (imported.tokenizer, imported.transformer)
        for t in module.state_dict().values()
    )
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    if code in NO_ROOM or free < needed:
        raise OSError(
            f"cannot write {out}: the disk holding {folder} is full ({human_bytes(free)} free, "
            f"{human_bytes(needed)} needed); free some space or choose an --out on a larger disk"
        )
    raise OSError(f"cannot write {out}: {said}")


def run(args: argparse.Namespace) -> int:
    if problem := out_problem(args.out, args.overwrite):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        imported = import_official(args.archive, args.dataset, args.run)
        save(args.out, imported)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    parameters = {
        name: sum(p.numel() for p in getattr(imported, name).parameters()) for name in ("tokenizer", "transformer")
    }
    print(
        f"imported {imported.meta['dataset']} models {imported.meta['tokenizer_run']['name']} + "
        f"{imported.meta['transformer_run']['name']} ({parameters['tokenizer'] / 1e6:.1f} M + "
        f"{parameters['transformer'] / 1e6:.1f} M parameters) into {args.out}"
    )
    return 0
