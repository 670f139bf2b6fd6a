"""`python -m engine models download official` against a local server (tests/model_server.py) that
stands in for Google Drive and the Hugging Face Hub: a small archive in the release layout and a
small CLIP text tower of the real file names. Every path a real download meets: complete, cut and
resumed within a run, cancelled and resumed by the next run, damaged, disk full (a real tmpfs),
no network, a folder it cannot write, a Python without the download's packages. The engine runs
as the add-on runs it, as a subprocess of its own Python.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ENGINE_PYTHON, ROOT

from tests import model_release_files
from tests.model_server import ARCHIVE, CLIP_PREFIX, UNWANTED, ModelServer


@pytest.fixture(scope="module")
def release_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("release")
    model_release_files.write(folder)
    return folder


@pytest.fixture(scope="module")
def release_zip(release_files) -> bytes:
    return (release_files / model_release_files.ARCHIVE).read_bytes()


@pytest.fixture()
def server(release_files):
    with ModelServer.for_release(release_files) as running:
        yield running


def engine_env(tmp_path: Path) -> dict:
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
        HF_HUB_CACHE=str(tmp_path / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )


def download_command(folder: Path, mirror: str, *extra: str) -> list[str]:
    return [
        ENGINE_PYTHON,
        "-m",
        "engine",
        "models",
        "--folder",
        str(folder),
        "download",
        "official",
        "--accept-licences",
        "--mirror",
        mirror,
        "--progress",
        "json",
        *extra,
    ]


def download(tmp_path: Path, mirror: str, *extra: str, prefix: list[str] = ()) -> tuple[int, list[dict], str]:
    finished = subprocess.run(
        [*prefix, *download_command(tmp_path / "models", mirror, *extra)],
        cwd=ROOT,
        env=engine_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    events = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    return finished.returncode, events, finished.stderr


def start_download(tmp_path: Path, mirror: str) -> subprocess.Popen:
    """A download running in the background (to cancel, or to run another beside)."""
    return subprocess.Popen(
        download_command(tmp_path / "models", mirror),
        cwd=ROOT,
        env=engine_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def installed(tmp_path: Path) -> dict[str, bool]:
    listed = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", "models", "--folder", str(tmp_path / "models"), "list", "--json"],
        cwd=ROOT,
        env=engine_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {row["key"]: row["installed"] for row in json.loads(listed.stdout)["models"]}


def assert_nothing_half_written(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    assert installed(tmp_path) == {"demo": True, "humanml3d": False, "motionx": False}
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.partial"))
    assert not (folder / "downloads" / "MoSa.zip").exists() or zipfile.is_zipfile(folder / "downloads" / "MoSa.zip")


def test_complete_download_installs_both_models_with_progress_then_one_generates(server, release_zip, tmp_path):
    started = time.perf_counter()
    code, events, stderr = download(tmp_path, server.url)
    print(
        f"download + verify + import of a {len(release_zip) / 1e6:.1f} MB archive: {time.perf_counter() - started:.1f} s"
    )
    assert code == 0, (events[-1:], stderr)
    assert events[-1]["event"] == "done" and events[-1]["installed"] == ["humanml3d", "motionx"]
    transfers = [e for e in events if e["event"] == "progress" and e["stage"] == "download"]
    assert transfers[-1]["done"] == transfers[-1]["total"] == len(release_zip)
    assert "MB of" in transfers[-1]["line"] and "/s" in transfers[-1]["line"]
    assert {e["stage"] for e in events if e["event"] == "progress"} >= {
        "download",
        "verify",
        "text encoder",
        "import",
        "done",
    }
    assert installed(tmp_path) == {"demo": True, "humanml3d": True, "motionx": True}
    requests_so_far = len(server.requests)
    code, events, stderr = download(tmp_path, server.url)
    assert code == 0 and "already installed" in events[-2]["line"] and len(server.requests) == requests_so_far, stderr
    folder = tmp_path / "models"
    assert not (folder / "downloads").exists(), "the archive is removed once both models are imported"
    assert sorted(path.name for path in folder.iterdir()) == [
        "download.lock",
        "humanml3d.pt",
        "installed.json",
        "motionx.pt",
    ]
    fetched = {
        path.rsplit("/", 1)[1]
        for method, path, _ in server.requests
        if method == "GET" and path.startswith(CLIP_PREFIX)
    }
    assert "model.safetensors" in fetched and "config.json" in fetched and not fetched & set(UNWANTED)

    out = tmp_path / "walk.npz"
    generated = subprocess.run(
        [
            ENGINE_PYTHON,
            "-m",
            "engine",
            "generate",
            "--checkpoint",
            str(folder / "humanml3d.pt"),
            "--prompt",
            "a person walks",
            "--seconds",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        env=dict(engine_env(tmp_path), HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stderr
    positions = np.load(out)["positions"]
    assert positions.shape == (40, 22, 3) and np.isfinite(positions).all()

    weights = next((tmp_path / "hf").rglob("model.safetensors"))  # damaged on disk, or cut before it was checked
    os.truncate(weights.resolve(), weights.stat().st_size // 2)
    assert installed(tmp_path) == {"demo": True, "humanml3d": False, "motionx": False}
    code, _, stderr = download(tmp_path, server.url)
    assert code == 0 and installed(tmp_path) == {"demo": True, "humanml3d": True, "motionx": True}, stderr
    assert len(server.ranges(f"{CLIP_PREFIX}/model.safetensors")) == 2, "the damaged copy was fetched again"

    removed = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", "models", "--folder", str(folder), "remove", "official", "--text-encoder"],
        cwd=ROOT,
        env=engine_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert removed.returncode == 0, removed.stderr
    assert installed(tmp_path) == {"demo": True, "humanml3d": False, "motionx": False}
    assert not list(folder.glob("*.pt")) and not (tmp_path / "hf" / "models--openai--clip-vit-base-patch32").exists()


def test_the_licences_are_shown_and_must_be_accepted(server, tmp_path):
    command = [
        c
        for c in download_command(tmp_path / "models", server.url)
        if c not in ("--accept-licences", "--progress", "json")
    ]
    refused = subprocess.run(
        command,
        cwd=ROOT,
        env=engine_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 2 and "--accept-licences" in refused.stderr
    assert "non-commercial research" in refused.stderr and "MIT licence" in refused.stderr
    assert server.requests == [], "nothing is fetched before the licences are accepted"


def test_a_cut_connection_resumes_with_a_range_request(server, release_zip, tmp_path):
    cut = len(release_zip) // 3
    server.faults.cut_after[ARCHIVE] = cut
    code, _, stderr = download(tmp_path, server.url)
    assert code == 0, stderr
    first, resumed = server.ranges(ARCHIVE)
    assert first is None and resumed.startswith("bytes=") and 0 < int(resumed[6:-1]) <= cut, resumed
    assert installed(tmp_path)["humanml3d"]


def test_a_line_that_keeps_breaking_is_said_to_break_not_to_be_an_unwritable_folder(server, release_zip, tmp_path):
    """Every transfer of CLIP's weights cut at its 256 KiB: once the Hub's retries are spent, the
    download ended in the Hub's transport's traceback (RemoteProtocolError), and a size check's
    OSError was said to be "cannot write <folder>; set MOSA_MODELS_DIR"."""
    server.faults.cut_always[f"{CLIP_PREFIX}/model.safetensors"] = 256 * 1024
    try:
        code, events, stderr = download(tmp_path, server.url)
    finally:
        server.faults.cut_always.clear()
    assert code == 1, stderr
    assert events[-1]["kind"] == "offline" and "broke off" in events[-1]["message"], events[-1]
    assert "MOSA_MODELS_DIR" not in events[-1]["message"]
    assert_nothing_half_written(tmp_path)


def test_a_cancelled_download_keeps_its_bytes_and_the_next_one_resumes(server, release_zip, tmp_path):
    server.faults.throttle_s = 0.1  # about 0.6 MB/s: the download is still running when it is cancelled
    downloads = tmp_path / "models" / "downloads"
    process = start_download(tmp_path, server.url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(p.stat().st_size for p in downloads.glob("*.part")) < 256 * 1024:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what the add-on's Cancel does
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert json.loads(stdout.splitlines()[-1])["kind"] == "cancelled"
    (partial,) = downloads.glob("*.part")
    kept = partial.stat().st_size
    assert 0 < kept < len(release_zip)
    assert_nothing_half_written(tmp_path)

    server.faults.throttle_s = 0.0
    code, _, stderr = download(tmp_path, server.url)
    assert code == 0, stderr
    assert server.ranges(ARCHIVE)[-1] == f"bytes={kept}-", "the second run asks only for the bytes it lacks"
    assert installed(tmp_path) == {"demo": True, "humanml3d": True, "motionx": True}


def test_a_second_download_into_the_same_folder_is_refused_and_the_first_finishes(server, tmp_path):
    """The add-on's button and a shell both downloading into one folder: the second says who holds
    it (before, each deleted the other's files and neither installed anything), and so does a
    Remove meanwhile."""
    server.faults.throttle_s = 0.05  # the first is still downloading when the second starts
    partial = tmp_path / "models" / "downloads"
    first = start_download(tmp_path, server.url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(partial.glob("*.part")):
        time.sleep(0.05)
    code, events, _ = download(tmp_path, server.url)
    removing = subprocess.run(  # Remove meanwhile would delete the partial archive under it
        [ENGINE_PYTHON, "-m", "engine", "models", "--folder", str(tmp_path / "models"), "remove", "official"],
        cwd=ROOT,
        env=engine_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    server.faults.throttle_s = 0.0
    assert removing.returncode != 0 and "another download into" in removing.stderr, removing.stderr
    assert code == 1 and events[-1]["kind"] == "busy", events[-1]
    assert events[-1]["message"].startswith(f"another download into {tmp_path / 'models'} is running (pid {first.pid})")
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0 and json.loads(stdout.splitlines()[-1])["event"] == "done", stderr
    assert installed(tmp_path) == {"demo": True, "humanml3d": True, "motionx": True}
    assert len(server.ranges(ARCHIVE)) == 1, "the second fetched nothing"


def damaged(release_zip: bytes) -> bytes:
    """The archive with one byte of a weights file flipped: the zip reads, the CRC does not match."""
    at = release_zip.index(b"PK", release_zip.index(b"net_best_fid.tar") + 100)  # inside the member's data
    return release_zip[: at - 40] + bytes([release_zip[at - 40] ^ 0xFF]) + release_zip[at - 39 :]


@pytest.mark.parametrize("kind", ["flipped byte", "truncated"])
def test_a_damaged_archive_is_reported_and_removed(server, release_zip, tmp_path, kind):
    server.files[ARCHIVE] = damaged(release_zip) if kind == "flipped byte" else release_zip[: len(release_zip) // 2]
    code, events, _ = download(tmp_path, server.url)
    assert code == 1 and events[-1]["kind"] == "damaged", events[-1]
    assert "damaged" in events[-1]["message"] and "download again" in events[-1]["message"]
    assert not (tmp_path / "models" / "downloads" / "MoSa.zip").exists()
    assert_nothing_half_written(tmp_path)


def test_clip_weights_that_arrive_damaged_are_refused_and_removed(server, tmp_path):
    """Served cut in half with a matching length, they once counted as installed and failed at the
    first Generate; removed now, the next download fetches them again."""
    weights = f"{CLIP_PREFIX}/model.safetensors"
    server.files[weights] = server.files[weights][: len(server.files[weights]) // 2]
    code, events, _ = download(tmp_path, server.url)
    message = events[-1]["message"]
    assert code == 1 and events[-1]["kind"] == "damaged", events[-1]
    assert "model.safetensors arrived damaged" in message and "removed: download again" in message, message
    blobs = list((tmp_path / "hf").rglob("blobs/*"))
    assert blobs and len(server.files[weights]) not in {blob.stat().st_size for blob in blobs}, "its blob is removed"
    assert not list((tmp_path / "hf").rglob("model.safetensors")), "and the snapshot's link to it"
    assert_nothing_half_written(tmp_path)


def test_no_network_says_so(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, events, _ = download(tmp_path, closed, "--retries", "1")
    assert code == 1 and events[-1]["kind"] == "offline", events[-1]
    assert "cannot reach" in events[-1]["message"] and "online" in events[-1]["message"]
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("case", ["models folder under a file", "Hub cache under a file", "no download packages"])
def test_a_folder_that_cannot_be_written_or_a_missing_package_is_one_plain_error(server, tmp_path, case):
    """One error naming the path or the package: a JSON event for the add-on (which had only "exit
    code 1" to show), one line in text mode, never a traceback."""
    (tmp_path / "file").write_text("kept")
    folder = tmp_path / ("file/models" if case == "models folder under a file" else "models")
    hub = tmp_path / ("file/hf" if case == "Hub cache under a file" else "hf")
    env = dict(engine_env(tmp_path), HF_HUB_CACHE=str(hub))
    python = [ENGINE_PYTHON, "-S"] if case == "no download packages" else [ENGINE_PYTHON]  # -S: no site-packages
    command = [*python, *download_command(folder, server.url)[1:]]
    for mode in ("json", "text"):
        finished = subprocess.run(
            command if mode == "json" else command[:-2], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert finished.returncode == 1 and "Traceback" not in finished.stderr, finished.stderr
        if mode == "json":
            event = json.loads(finished.stdout.splitlines()[-1])
            print(f"{case}: {event}")
        else:
            assert finished.stderr == f"error: {event['message']}\n"
    expected = {
        "models folder under a file": ("folder", f"cannot write {folder} (Not a directory); set MOSA_MODELS_DIR"),
        "Hub cache under a file": ("folder", f"cannot write {hub} (Not a directory); CLIP goes to the Hugging Face"),
        "no download packages": ("setup", "lacks gdown, which the download needs: set the engine up again"),
    }[case]
    assert event["event"] == "error" and event["kind"] == expected[0] and expected[1] in event["message"], event
    assert (tmp_path / "file").read_text() == "kept"


def tmpfs_prefix(folder: Path, kilobytes: int, listing: Path) -> list[str]:
    """Run the command with `folder` on a tmpfs of that size, in a mount namespace of its own; the
    files it leaves there are listed in `listing` before the tmpfs goes with the namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: a tmpfs cannot be mounted for the disk-full test")
    folder.mkdir(parents=True, exist_ok=True)
    script = f'mount -t tmpfs -o size={kilobytes}k tmpfs "{folder}" && "$@"; code=$?; find "{folder}" -type f > "{listing}"; exit $code'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]


@pytest.mark.parametrize("room", ["smaller than the archive", "the archive but not the models"])
def test_a_full_disk_is_reported_and_leaves_no_model(server, release_zip, tmp_path, room):
    size_kb = len(release_zip) // 2048 if room == "smaller than the archive" else len(release_zip) * 3 // 2048
    listing = tmp_path / "left.txt"
    code, events, stderr = download(tmp_path, server.url, prefix=tmpfs_prefix(tmp_path / "models", size_kb, listing))
    assert code == 1 and events[-1].get("kind") == "disk_full", (events[-1:], stderr)
    assert "full" in events[-1]["message"] and "MOSA_MODELS_DIR" in events[-1]["message"]
    left = [Path(line).name for line in listing.read_text().splitlines()]
    print(f"{room}: a {size_kb} kB disk kept {left}")
    assert not [name for name in left if name.endswith((".pt", ".partial")) or name == "installed.json"], left
    if room != "smaller than the archive":
        assert "MoSa.zip" in left, "the downloaded archive is kept: freeing space and running again imports it"
