"""A stand-in for Google Drive and the Hugging Face Hub on 127.0.0.1, for the model download tests.

It serves files by path with HTTP Range (206 and Content-Range, as both real servers do), answers
HEAD under /<repo>/resolve/<revision>/ with the headers huggingface_hub reads (X-Repo-Commit,
ETag, Content-Length), and says EntryNotFound for a file a repository lacks. Faults a real
download meets: `cut_after` closes the first full transfer of a file after that many bytes,
`cut_always` every transfer of a file at that byte of it (a line that breaks there each time),
`throttle_s` sleeps after every chunk, so a test can stop a download half way. Every request is
recorded (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 64 * 1024
ARCHIVE = "/MoSa.zip"
CLIP_PREFIX = "/openai/clip-vit-base-patch32/resolve/main"
UNWANTED = ("tf_model.h5", "flax_model.msgpack")  # the Hub repository's other weights copies: never to be fetched


@dataclass
class Faults:
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before the first full GET is cut
    cut_always: dict[str, int] = field(default_factory=dict)  # path -> the byte at which every GET is cut
    throttle_s: float = 0.0  # pause after each chunk


class ModelServer:
    """`with ModelServer(files) as server:` serves {path: bytes} at server.url until the block ends."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.faults = Faults()
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @classmethod
    def for_release(cls, folder: Path) -> ModelServer:
        """The archive and CLIP's files that tests/model_release_files.py wrote into folder, as the real sources serve them."""
        server = cls({ARCHIVE: (folder / "MoSa.zip").read_bytes()})
        server.add_folder(CLIP_PREFIX, folder / "clip")
        for name in UNWANTED:
            server.files[f"{CLIP_PREFIX}/{name}"] = b"\0" * 1000
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_folder(self, prefix: str, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()

    def ranges(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of a path, in order (None: a full GET)."""
        return [rng for method, got, rng in self.requests if method == "GET" and got == path]

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append((self.command, path, self.headers.get("Range")))
                data = server.files.get(path)
                if data is None:
                    self.send_response(404)
                    if "/resolve/" in path:
                        self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and int(match[1]) < len(data):
                    start = int(match[1])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                if "/resolve/" in path:
                    self.send_header("X-Repo-Commit", HUB_COMMIT)
                self.end_headers()
                if not body:
                    return
                cut = server.faults.cut_after.pop(path, None) if start == 0 else None
                if path in server.faults.cut_always:
                    cut = max(start, server.faults.cut_always[path])
                end = len(data) if cut is None else cut
                try:
                    for offset in range(start, end, CHUNK):
                        self.wfile.write(data[offset : min(offset + CHUNK, end)])
                        if server.faults.throttle_s:
                            time.sleep(server.faults.throttle_s)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if cut is not None:
                    self.close_connection = True  # the client sees the body end before Content-Length

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler
