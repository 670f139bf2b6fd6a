"""`python -m engine models list|download official|remove`: the paper's models, one command away.

Three models: the bundled demo model, and the authors' HumanML3D and Motion-X models. Those two
come from the authors' release archive (a Google Drive file, fetched with gdown, which handles
Drive's large-file confirmation and resumes with HTTP Range), are imported into engine
checkpoints (engine.official), and read CLIP ViT-B/32 token features, whose text tower is
fetched into the Hugging Face cache with huggingface_hub (config, tokenizer and one weights file,
not the repository's TF and Flax copies).

Nothing half-written is ever where a model is looked for: the archive downloads under a partial
name that gdown renames once complete, checkpoints are written by checkpoint.save (a partial
name, then an atomic rename), and a model counts as installed only once the manifest
(installed.json, replaced atomically) lists it, which is the last step, and CLIP's weights are
whole (a header check: a transfer cut with a matching length passes the Hub's size check). A
mirror (a base URL serving MoSa.zip and the Hub's file paths, MOSA_MODELS_MIRROR) replaces both
sources: tests point it at a server on 127.0.0.1. The module's top imports the standard library only, so
`list` and `remove` start fast; downloads and imports load their libraries when they run.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import struct
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.locks import Held, held_alone

FOLDER_VARIABLE = "MOSA_MODELS_DIR"
MIRROR_VARIABLE = "MOSA_MODELS_MIRROR"
ARCHIVE_DRIVE_ID = (
    "1jX0hRKedBXJuwEQQaec7dU1VOFbPpO5U"  # what the authors' prepare/download_evaluator_and_models.sh fetches
)
ARCHIVE_NAME = "MoSa.zip"
MANIFEST = "installed.json"
DOWNLOADS = "downloads"  # the archive while it downloads and until both models are imported
IMPORTING = "importing"  # checkpoints being written, until both are complete
LOCK = "download.lock"  # held by the one download running into the folder
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "demo.pt"
CLIP_REPO = "openai/clip-vit-base-patch32"  # engine.text_encoders loads it from the cache under this name
CLIP_REVISION = "main"
CLIP_FILES = ("config.json", "tokenizer_config.json")
# The tokenizer is its tokenizer.json, or vocab.json with merges.txt: whichever the repository has.
CLIP_OPTIONAL_FILES = ("special_tokens_map.json", "tokenizer.json", "vocab.json", "merges.txt")
CLIP_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first the repository has; it holds both towers
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a file-size limit
LICENCES = (
    (
        "MoSa models (HumanML3D and Motion-X) by Mengyuan Liu, Sheng Yan, Yong Wang, Yingjie Li, Gui-Bin Bian and Hong Liu "
        "(arXiv 2511.01200), downloaded from the authors' release: use them under the terms of that release. They were "
        "trained on HumanML3D (built on AMASS) and Motion-X, whose licences allow non-commercial research use; check those "
        "terms before any other use."
    ),
    "CLIP ViT-B/32 text encoder (openai/clip-vit-base-patch32) by OpenAI: MIT licence.",
)


@dataclass(frozen=True)
class Model:
    key: str  # the name on the command line and in the manifest
    label: str  # the name in the add-on's selector
    knows: str  # what it was trained on, for the selector's tooltip
    dataset: str | None  # the archive's dataset folder (engine.official), None for the bundled model


CATALOGUE = (
    Model(
        "demo", "Demo", "a few dozen motions (walks, runs, jumps, waves, dances) from the bundled demo dataset", None
    ),
    Model("humanml3d", "HumanML3D", "14,616 motions with 44,970 captions (HumanML3D, the paper's main model)", "t2m"),
    Model("motionx", "Motion-X", "81,084 motions of daily life, sports and dance (Motion-X)", "motionx"),
)
OFFICIAL = tuple(model for model in CATALOGUE if model.dataset is not None)


class ModelsError(Exception):
    """What the user is told: `kind` is offline, disk_full, folder (cannot write there), setup (a package is
    missing), busy (another download runs into the folder), damaged, server, cancelled, licences or unknown_model."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Cancelled(ModelsError):
    def __init__(self) -> None:
        super().__init__(
            "cancelled", "cancelled; the bytes downloaded so far are kept and the next download resumes from them"
        )


def models_folder() -> Path:
    """Where downloaded models live: MOSA_MODELS_DIR, else the user's cache (shared by the CLI and the add-on)."""
    return Path(os.environ.get(FOLDER_VARIABLE) or Path.home() / ".cache" / "mosa-blender" / "models")


def find_model(key: str) -> Model:
    for model in CATALOGUE:
        if model.key == key:
            return model
    raise ModelsError("unknown_model", f"unknown model {key!r}; expected one of {[m.key for m in CATALOGUE]}")


# --- what is installed -------------------------------------------------------------------------------------------
def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(folder: Path, manifest: dict) -> None:
    partial = folder / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(partial, folder / MANIFEST)


def installed_path(model: Model, folder: Path) -> Path | None:
    """The model's checkpoint when it is complete and usable, else None."""
    if model.dataset is None:
        return DEMO_CHECKPOINT if DEMO_CHECKPOINT.is_file() else None
    entry = read_manifest(folder).get(model.key)
    if not isinstance(entry, dict):
        return None
    path, text_encoder = folder / str(entry.get("file")), Path(str(entry.get("text_encoder")))
    return path if path.is_file() and text_encoder_usable(text_encoder) else None


def text_encoder_usable(snapshot: Path) -> bool:
    """CLIP's config and an undamaged weights file are in its cache snapshot (headers read, nothing loaded)."""
    weights = next((snapshot / name for name in CLIP_WEIGHTS if (snapshot / name).is_file()), None)
    return (snapshot / "config.json").is_file() and weights is not None and weights_problem(weights) is None


def weights_problem(path: Path) -> str | None:
    """What is wrong with a weights file, from its layout alone, or None: a safetensors file must be
    exactly its header plus the tensor data the header places (a cut transfer is shorter), a
    pytorch_model.bin a zip whose directory (at its end) is there."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as opened:
            if path.suffix != ".safetensors":
                return None if zipfile.is_zipfile(opened) else "not a complete zip"
            (length,) = struct.unpack("<Q", opened.read(8))
            if length > size - 8:
                return f"its header runs past the end of its {human_bytes(size)}"
            header = json.loads(opened.read(length))
            end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError) as error:
        return f"unreadable: {error}"
    expected = 8 + length + end
    return None if size == expected else f"{human_bytes(size)} where its header places {human_bytes(expected)}"


def discard(cached: Path) -> None:
    """A file in the Hugging Face cache, and the blob its snapshot entry links to: the next fetch downloads it again."""
    cached.resolve().unlink(missing_ok=True)
    cached.unlink(missing_ok=True)


def catalogue_status(folder: Path) -> list[dict]:
    """Every model with whether it is installed, where, and how big (what `list --json` prints)."""
    rows = []
    for model in CATALOGUE:
        path = installed_path(model, folder)
        rows.append(
            {
                **asdict(model),
                "installed": path is not None,
                "path": None if path is None else str(path),
                "bytes": None if path is None else path.stat().st_size,
            }
        )
    return rows


# --- progress ----------------------------------------------------------------------------------------------------
@dataclass
class Progress:
    stage: str  # "download", "verify", "import", "text encoder", "done"
    item: str  # the file or model being worked on
    done: int = 0  # bytes so far (0 for stages without bytes)
    total: int | None = None
    rate: float = 0.0  # bytes per second over this run
    eta_s: float | None = None

    def line(self) -> str:
        if not self.total and not self.done:
            return f"{self.stage}: {self.item}"
        amount = human_bytes(self.done) + (f" of {human_bytes(self.total)}" if self.total else "")
        rate = f", {human_bytes(self.rate)}/s" if self.rate > 0 else ""
        left = f", {human_duration(self.eta_s)} left" if self.eta_s is not None else ""
        return f"{self.stage} {self.item}: {amount}{rate}{left}"


Report = Callable[[Progress], None]


@dataclass
class Meter:
    """Bytes, rate and time left of one transfer, reported at most every `every_s` seconds."""

    stage: str
    item: str
    report: Report
    every_s: float = 0.5
    first: tuple[float, int] | None = None  # (time, bytes) of the first update: the rate counts from there
    last_report: float = 0.0

    def update(self, done: int, total: int | None, final: bool = False) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, done)
        if not final and now - self.last_report < self.every_s:
            return
        self.last_report = now
        elapsed = now - self.first[0]
        rate = (done - self.first[1]) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if total and rate > 0 else None
        self.report(Progress(self.stage, self.item, done, total, rate, eta))


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def human_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# --- download and import -----------------------------------------------------------------------------------------
@dataclass
class Sources:
    archive_url: str | None = None  # None: the authors' Google Drive file
    hub_endpoint: str | None = None  # None: HF_ENDPOINT, else the Hugging Face Hub

    @classmethod
    def from_mirror(cls, mirror: str | None) -> Sources:
        if not mirror:
            return cls()
        mirror = mirror.rstrip("/")
        return cls(f"{mirror}/{ARCHIVE_NAME}", mirror)


@dataclass
class DownloadOptions:
    folder: Path
    sources: Sources = field(default_factory=Sources)
    keep_archive: bool = False  # keep MoSa.zip after both models are imported (it holds evaluators too)
    retries: int = 2  # reconnections per transfer (each resumes where the last stopped)
    timeout_s: float = 30.0  # seconds without a byte before a connection counts as lost


def download_official(options: DownloadOptions, report: Report) -> list[str]:
    """Download the release, check it, import both models and fetch CLIP's text tower; the keys installed."""
    folder = options.folder

    def installed_already() -> bool:
        if all(installed_path(model, folder) is not None for model in OFFICIAL):
            report(Progress("done", "already installed (remove them first to download them again)"))
            return True
        return False

    if installed_already():  # before the lock too: a read-only folder of installed models answers
        return [model.key for model in OFFICIAL]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with only_download(folder):
            if installed_already():  # a download that held the lock until now installed them
                return [model.key for model in OFFICIAL]
            install_official(options, report)
    except OSError as error:
        raise oserror_kind(error, folder) from None
    except ImportError as error:
        raise ModelsError(
            "setup",
            f"the engine's Python {sys.executable} lacks {error.name or error}, which the download needs: set the "
            "engine up again (Set Up Engine in the add-on's preferences, or `python3 build.py setup`)",
        ) from None
    report(Progress("done", ", ".join(model.label for model in OFFICIAL)))
    return [model.key for model in OFFICIAL]


@contextmanager
def only_download(folder: Path) -> Iterator[None]:
    """This process alone downloads into `folder` (a second one would delete the first's partial files)."""
    try:
        with held_alone(folder / LOCK):
            yield
    except Held as held:
        raise ModelsError(
            "busy", f"another download into {folder} is running (pid {held.holder}); let it finish, or cancel it first"
        ) from None


def install_official(options: DownloadOptions, report: Report) -> None:
    """The download's steps, under its lock: nothing else writes in the folder meanwhile."""
    folder, importing = options.folder, options.folder / IMPORTING
    shutil.rmtree(importing, ignore_errors=True)  # what a killed import left: never picked up, but it takes space
    try:
        archive = fetch_archive(options, report)
        verify_archive(archive, report)
        text_encoder = fetch_text_encoder(options.sources.hub_endpoint, report)
        importing.mkdir()
        entries = {model.key: import_model(model, archive, importing, text_encoder, report) for model in OFFICIAL}
        manifest = read_manifest(folder)
        for key, entry in entries.items():  # both models are complete: only now do they move where they are looked for
            os.replace(importing / entry["file"], folder / entry["file"])
            manifest[key] = entry
        write_manifest(folder, manifest)
    finally:
        shutil.rmtree(importing, ignore_errors=True)
    if not options.keep_archive:
        shutil.rmtree(folder / DOWNLOADS, ignore_errors=True)


def no_room(folder: Path) -> ModelsError:
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    return ModelsError(
        "disk_full",
        f"the disk holding {folder} is full ({human_bytes(free)} free); free some space and "
        f"download again (what was downloaded is kept), or set {FOLDER_VARIABLE} to a folder "
        "on a larger disk",
    )


def oserror_kind(error: OSError, folder: Path) -> ModelsError:
    """An OSError out of the download, told apart: a file it could not write has an errno, while
    a transfer that broke off (requests' errors, the Hub's size check) is an OSError without one."""
    if error.errno is None and error.filename is None:
        return broke_off("a transfer", error)
    return file_error(error, folder)


def broke_off(what: str, error: Exception) -> ModelsError:
    return ModelsError(
        "offline",
        f"{what} broke off ({type(error).__name__}: {str(error)[:200]}); run the download again: it resumes "
        "where it stopped",
    )


def file_error(error: OSError, folder: Path) -> ModelsError:
    """A file the download could not write, named, with what to do, instead of a traceback."""
    if error.errno in NO_ROOM:
        return no_room(folder)
    path = Path(error.filename or folder)
    where = (
        f"set {FOLDER_VARIABLE} to a folder you can write to"
        if path.is_relative_to(folder)
        else "CLIP goes to the Hugging Face cache: make it writable, or set HF_HOME to a folder you can write to"
    )
    return ModelsError("folder", f"cannot write {path} ({error.strerror or error}); {where}")


def fetch_archive(options: DownloadOptions, report: Report) -> Path:
    """The release zip in folder/downloads/, resumed from a partial file a previous run left."""
    import gdown
    import requests
    from gdown.exceptions import DownloadError, FileURLRetrievalError

    downloads = options.folder / DOWNLOADS
    downloads.mkdir(parents=True, exist_ok=True)
    output = downloads / ARCHIVE_NAME
    meter = Meter("download", ARCHIVE_NAME, report)
    checked_room = False

    def progress(done: int, total: int | None) -> None:
        nonlocal checked_room
        if total and not checked_room:  # fail at once, not after an hour, when the archive cannot fit
            checked_room = True
            if shutil.disk_usage(downloads).free < total - done:
                raise no_room(options.folder)
        meter.update(done, total)

    source = {"url": options.sources.archive_url} if options.sources.archive_url else {"id": ARCHIVE_DRIVE_ID}
    where = options.sources.archive_url or f"Google Drive (file {ARCHIVE_DRIVE_ID})"
    try:
        gdown.download(
            **source,
            output=str(output),
            quiet=True,
            resume=True,
            progress=progress,
            retries=options.retries,
            timeout=options.timeout_s,
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise offline(where, error) from None
    except DownloadError as error:
        if isinstance(error.__cause__, (requests.ConnectionError, requests.Timeout)):
            raise offline(where, error.__cause__) from None
        raise ModelsError("server", f"the download from {where} failed: {error}") from None
    except requests.HTTPError as error:
        raise ModelsError("server", f"{where} refused the download ({error}); try again later") from None
    except FileURLRetrievalError as error:
        raise ModelsError("server", f"Google Drive did not hand out the archive: {error}") from None
    size = output.stat().st_size
    meter.update(size, size, final=True)
    return output


def offline(where: str, error: Exception) -> ModelsError:
    return ModelsError(
        "offline",
        f"cannot reach {where}: is this computer online? ({type(error).__name__}); "
        "run the download again once it is: it resumes where it stopped",
    )


def verify_archive(archive: Path, report: Report) -> None:
    """Every member read through its CRC and both datasets' runs present; a damaged archive is removed
    so that the next run downloads it afresh."""
    meter = Meter("verify", archive.name, report)
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [info for info in opened.infolist() if not info.is_dir()]
            # A truncated file can still open: the weights files inside are zips of their own.
            for model in OFFICIAL:
                if not any(f"checkpoints/{model.dataset}/" in info.filename for info in members):
                    raise zipfile.BadZipFile(
                        f"no checkpoints/{model.dataset}/ folder: the file is cut short or not the release"
                    )
            total, done = sum(info.file_size for info in members), 0
            for info in members:
                with opened.open(info) as member:
                    while chunk := member.read(1 << 20):
                        done += len(chunk)
                        meter.update(done, total)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as error:
        archive.unlink(missing_ok=True)
        raise ModelsError(
            "damaged", f"the downloaded archive is damaged ({error}); it was removed: download again"
        ) from None
    meter.update(done, total, final=True)


def fetch_text_encoder(endpoint: str | None, report: Report) -> Path:
    """CLIP ViT-B/32's config, tokenizer and weights in the Hugging Face cache; the snapshot folder.
    Cached weights that are damaged (a cut transfer) are fetched again; weights that arrive damaged
    are removed and refused, so the next download fetches them again too."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, HTTPError, LocalEntryNotFoundError, RemoteEntryNotFoundError
    from tqdm.auto import tqdm

    class Reporting(tqdm):
        """huggingface_hub's progress bar, turned into reports."""

        def __init__(self, *args, **kwargs) -> None:
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": True})
            self.meter = Meter("text encoder", current, report)
            self.bytes_done, self.bytes_total = int(kwargs.get("initial") or 0), kwargs.get("total")

        def update(self, n: float | None = 1) -> bool | None:
            self.bytes_done += int(n or 0)
            self.meter.update(self.bytes_done, self.bytes_total)
            return super().update(n)

    current = CLIP_REPO

    def fetch(name: str) -> Path | None:
        nonlocal current
        current = f"{CLIP_REPO}/{name}"
        report(Progress("text encoder", current))
        try:
            return Path(
                hf_hub_download(CLIP_REPO, name, revision=CLIP_REVISION, endpoint=endpoint, tqdm_class=Reporting)
            )
        except RemoteEntryNotFoundError:
            return None
        except LocalEntryNotFoundError as error:  # no connection and nothing cached
            raise offline(endpoint or "the Hugging Face Hub", error.__cause__ or error) from None
        except HfHubHTTPError as error:
            raise ModelsError("server", f"the Hugging Face Hub refused {CLIP_REPO}/{name}: {error}") from None
        except HTTPError as error:  # the Hub's own transport: a line that broke off past its retries
            raise broke_off(f"the transfer of {current}", error) from None

    for name in CLIP_FILES:
        if fetch(name) is None:
            raise ModelsError("server", f"{CLIP_REPO} has no {name} at {endpoint or 'the Hugging Face Hub'}")
    fetched = {name for name in CLIP_OPTIONAL_FILES if fetch(name) is not None}
    if "tokenizer.json" not in fetched and not {"vocab.json", "merges.txt"} <= fetched:
        raise ModelsError("server", f"{CLIP_REPO} has neither tokenizer.json nor vocab.json with merges.txt")
    for name in CLIP_WEIGHTS:
        cached = try_to_load_from_cache(CLIP_REPO, name, revision=CLIP_REVISION)
        if isinstance(cached, str) and weights_problem(Path(cached)) is not None:
            discard(Path(cached))
        weights = fetch(name)
        if weights is None:
            continue
        problem = weights_problem(weights)
        if problem is not None:
            discard(weights)
            raise ModelsError(
                "damaged", f"{CLIP_REPO}/{name} arrived damaged ({problem}); it was removed: download again"
            )
        return weights.parent
    raise ModelsError("server", f"{CLIP_REPO} has none of {list(CLIP_WEIGHTS)}")


def import_model(model: Model, archive: Path, folder: Path, text_encoder: Path, report: Report) -> dict:
    """One dataset's runs from the archive into folder/<key>.pt; its manifest entry (the file's name)."""
    from engine import checkpoint, official

    report(Progress("import", f"{model.label} ({model.dataset} runs of {archive.name})"))
    try:
        imported = official.import_official(archive, model.dataset)
    except ValueError as error:
        raise ModelsError(
            "damaged",
            f"the archive's {model.label} models cannot be imported: {error} (the archive is kept in {archive.parent})",
        ) from None
    imported.meta["model"] = model.key
    path = folder / f"{model.key}.pt"
    try:
        checkpoint.save(path, imported)
    except RuntimeError as error:  # torch's writer reports a failed write as a RuntimeError ("unexpected pos")
        path.with_name(path.name + ".partial").unlink(missing_ok=True)
        needed = sum(
            t.numel() * t.element_size()
            for m in (imported.tokenizer, imported.transformer)
            for t in m.state_dict().values()
        )
        if shutil.disk_usage(folder).free < needed:
            raise OSError(errno.ENOSPC, f"{path.name} needs {human_bytes(needed)}") from error
        raise
    return {
        "file": path.name,
        "text_encoder": str(text_encoder),
        "dataset": imported.meta["dataset"],
        "runs": [imported.meta["tokenizer_run"]["name"], imported.meta["transformer_run"]["name"]],
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def remove(keys: list[str], folder: Path, text_encoder: bool = False) -> list[Path]:
    """Forget the models (manifest first, so none is half there), then delete their files; what was
    deleted. Not while a download runs there (it would lose its partial archive)."""
    with only_download(folder) if folder.is_dir() else nullcontext():
        return _remove(keys, folder, text_encoder)


def _remove(keys: list[str], folder: Path, text_encoder: bool) -> list[Path]:
    manifest = read_manifest(folder)
    removed = []
    for key in keys:
        model = find_model(key)
        if model.dataset is None:
            raise ModelsError("unknown_model", "the demo model ships with the add-on and cannot be removed")
        manifest.pop(key, None)
    if folder.is_dir():
        write_manifest(folder, manifest)
    for key in keys:
        path = folder / f"{key}.pt"
        if path.exists():
            path.unlink()
            removed.append(path)
    if not any(model.key in manifest for model in OFFICIAL) and (folder / DOWNLOADS).exists():
        shutil.rmtree(folder / DOWNLOADS)
        removed.append(folder / DOWNLOADS)
    if text_encoder:
        from huggingface_hub.constants import HF_HUB_CACHE

        cached = Path(HF_HUB_CACHE) / ("models--" + CLIP_REPO.replace("/", "--"))
        if cached.exists():
            shutil.rmtree(cached)
            removed.append(cached)
    return removed


# --- the command -------------------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        help=f"where models live (default: ${FOLDER_VARIABLE} or {models_folder()})",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the models and whether they are installed")
    listing.add_argument(
        "--json", action="store_true", help="one JSON object: folder, models, licences (for the add-on)"
    )
    download = actions.add_parser("download", help="download and import the authors' models")
    download.add_argument(
        "which", choices=("official",), help="official: the HumanML3D and Motion-X models and CLIP's text tower"
    )
    download.add_argument(
        "--accept-licences", action="store_true", help="accept the licences printed before the download"
    )
    download.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_VARIABLE),
        help=f"a base URL serving {ARCHIVE_NAME} and the Hub's file paths instead of Google Drive and the Hub "
        f"(default: ${MIRROR_VARIABLE})",
    )
    download.add_argument("--keep-archive", action="store_true", help=f"keep {ARCHIVE_NAME} after importing it")
    download.add_argument("--retries", type=int, default=DownloadOptions.retries, help="reconnections per transfer")
    download.add_argument(
        "--timeout", type=float, default=DownloadOptions.timeout_s, help="seconds without data before reconnecting"
    )
    download.add_argument(
        "--progress", choices=("text", "json"), default="text", help="json: one JSON object a line (for the add-on)"
    )
    removing = actions.add_parser("remove", help="delete downloaded models")
    removing.add_argument("which", choices=("official", *(model.key for model in OFFICIAL)))
    removing.add_argument(
        "--text-encoder", action="store_true", help=f"also delete {CLIP_REPO} from the Hugging Face cache"
    )


def run(args: argparse.Namespace) -> int:
    folder = args.folder or models_folder()
    if args.action == "list":
        rows = catalogue_status(folder)
        if args.json:
            print(json.dumps({"folder": str(folder), "models": rows, "licences": list(LICENCES)}))
            return 0
        for row in rows:
            where = f"{row['path']} ({human_bytes(row['bytes'])})" if row["installed"] else "not installed"
            print(f"{row['key']:<10} {row['label']:<10} {where}\n{'':<21}{row['knows']}")
        return 0
    if args.action == "remove":
        keys = [model.key for model in OFFICIAL] if args.which == "official" else [args.which]
        try:
            removed = remove(keys, folder, args.text_encoder)
        except ModelsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print("\n".join(f"removed {path}" for path in removed) or "nothing to remove")
        return 0
    return run_download(args, folder)


def run_download(args: argparse.Namespace, folder: Path) -> int:
    as_json = args.progress == "json"

    def emit(event: dict, text: str, stream=sys.stdout) -> None:
        print(json.dumps(event) if as_json else text, file=sys.stdout if as_json else stream, flush=True)

    if not args.accept_licences:
        terms = "\n".join(f"- {licence}" for licence in LICENCES)
        answer = ""
        if sys.stdin.isatty() and not as_json:
            print(f"The models come with these terms:\n{terms}")
            answer = input("Accept them and download? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            emit(
                {"event": "error", "kind": "licences", "message": "the licences were not accepted"},
                f"The models come with these terms:\n{terms}\nerror: pass --accept-licences to accept them",
                sys.stderr,
            )
            return 2

    def interrupted(*_args) -> None:
        raise Cancelled()

    signal.signal(signal.SIGTERM, interrupted)  # the add-on's Cancel
    options = DownloadOptions(folder, Sources.from_mirror(args.mirror), args.keep_archive, args.retries, args.timeout)
    try:
        installed = download_official(
            options, lambda p: emit({"event": "progress", **asdict(p), "line": p.line()}, p.line())
        )
    except (ModelsError, KeyboardInterrupt) as error:
        error = error if isinstance(error, ModelsError) else Cancelled()
        emit({"event": "error", "kind": error.kind, "message": str(error)}, f"error: {error}", sys.stderr)
        return 1
    emit(
        {"event": "done", "installed": installed, "folder": str(folder)},
        f"installed {', '.join(installed)} in {folder}; use them with --checkpoint {folder / 'humanml3d.pt'}",
    )
    return 0
