"""`python -m engine serve`: the engine's HTTP/JSON service on 127.0.0.1 with a bearer token.

Ready to accept connections before the model is loaded: it prints one JSON line with the bound
port, then loads the model in the background while /v1/health reports the progress. Jobs run
one at a time on the model worker (engine.jobs); HTTP threads only validate, enqueue and read.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import hmac
import ipaddress
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__, validation
from engine.cli import DEFAULT_CHECKPOINT, add_precision_argument, file_problem
from engine.jobs import Job, JobCancelled, JobExpired, JobNotFound, JobQueue, JobSettings, QueueFull
from engine.validation import Limits, RequestError
from retarget import canonical, packed

log = logging.getLogger("engine.service")

PREVIEW_EVERY = 4  # keep every 4th frame of the coarse preview: enough to draw, small to poll
PREVIEW_EVERY_S = 0.5  # a preview (a decode) at most this often: a job shorter than this makes none
# How a finished job's motions come (GET /v1/jobs/{id}?result=...): JSON lists of floats, or each
# motion as base64 .npz text (retarget.packed), a quarter the size and read without parsing.
RESULT_FORMATS = ("json", "npz")


def default_threads() -> int:
    """torch's CPU threads for the model: half the cores, at least one. The rest is Blender's and the
    HTTP threads': with every core busy, torch's threads spin waiting for one another, and on a shared
    2-core machine a 4 s Generate took 11-18 s with 2 threads against 0.22-0.26 s with 1."""
    return max(1, (os.cpu_count() or 2) // 2)


DISCARD_AT_MOST = 64 * 1024 * 1024  # a refused body up to this size is read and dropped
LINGER_S = 2.0  # a closing connection reads what the client still sends for this long at most


@dataclass
class ServiceConfig:
    checkpoint: str
    token: str
    device: str = "auto"
    threads: int = field(default_factory=default_threads)
    precision: str = "float32"
    host: str = "127.0.0.1"
    port: int = 0
    log_file: str | None = None
    limits: Limits = field(default_factory=Limits)
    jobs: JobSettings = field(default_factory=JobSettings)


class ModelLoader:
    """Loads the pipeline on a background thread; the worker waits for it, health reports it."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config  # the model's file, device, threads and precision
        self.progress, self.message = 0.0, "starting"
        self.pipeline = None
        self.error: str | None = None
        self._done = threading.Event()
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            self.progress, self.message = 0.1, "importing torch"
            import torch

            from engine.pipeline import Pipeline  # heavy: torch and the text encoder

            torch.set_num_threads(self.config.threads)

            self.progress, self.message = 0.3, f"loading {self.config.checkpoint}"
            started = time.monotonic()
            pipeline = Pipeline.load(self.config.checkpoint, device=self.config.device, precision=self.config.precision)
            pipeline.preview_every_s = PREVIEW_EVERY_S
            self.pipeline = pipeline  # ready from here on
            self.progress, self.message = 1.0, "ready"
            log.info("model loaded in %.1f s: %s", time.monotonic() - started, self.pipeline.info)
        except Exception as exc:  # reported by health and by every job until restarted
            self.error = f"{type(exc).__name__}: {exc}"
            self.message = f"loading failed: {self.error}"
            log.exception("model loading failed")
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    def wait(self):
        """The loaded pipeline, waiting for it; raises if loading failed."""
        self._done.wait()
        if self.pipeline is None:
            raise RuntimeError(f"the model could not be loaded: {self.error}")
        return self.pipeline


# --- what each kind of job is: its request's parser and how it runs on the pipeline ------------------
PARSERS = {
    "generate": validation.parse_generate,
    "edit": validation.parse_edit,
    "timeline": validation.parse_timeline,  # prompt timelines and extensions (engine.timeline)
    "inbetween": validation.parse_inbetween,
}


def _generate(pipeline, request, report, should_cancel) -> list:
    return pipeline.generate(request, on_progress=report, should_cancel=should_cancel)


def _edit(pipeline, request, report, should_cancel) -> list:
    return pipeline.edit(request, on_progress=report, should_cancel=should_cancel)


def _timeline(pipeline, request, report, should_cancel) -> list:
    from engine.timeline import generate_long

    return [generate_long(pipeline, request, report, should_cancel)]


def _inbetween(pipeline, request, report, should_cancel) -> list:
    from engine.timeline import inbetween

    return [
        inbetween(
            pipeline,
            request.source,
            request.key_frames,
            request.prompt,
            request.seed,
            request.sampling,
            report,
            should_cancel,
        )
    ]


RUNS = {"generate": _generate, "edit": _edit, "timeline": _timeline, "inbetween": _inbetween}


def batch_key(job: Job):
    """Generate jobs that share their sampling options run as one batch (one forward per scale);
    every other job runs alone."""
    return ("generate", job.request.sampling) if job.kind == "generate" else None


class Engine:
    """The service's state: the model loader, the job queue, and how a job runs on the model."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.loader = ModelLoader(config)
        self.jobs = JobQueue(self._run_jobs, config.jobs, batch_key)

    def health(self) -> dict:
        info = self.loader.pipeline.info if self.loader.ready else {}
        health = {
            "version": __version__,
            "model": info.get("model"),
            "device": info.get("device", self.config.device),
            "precision": self.config.precision,
            "threads": self.config.threads,
            "ready": self.loader.ready,
            "loading": {"progress": self.loader.progress, "message": self.loader.message},
            "jobs": self.jobs.counts(),
            "log_file": self.config.log_file,
            "pid": os.getpid(),
        }
        if self.loader.error:
            health["error"] = self.loader.error
        return health

    def _run_jobs(self, jobs: list[Job], on_progress, should_cancel) -> list:
        """The jobs' motions, one list per job: a batch of generate jobs in one pass, else one job."""
        pipeline = self.loader.wait()
        from engine.pipeline import Cancelled

        def report(progress) -> None:
            preview = None
            if progress.preview_joints is not None:
                preview = np.asarray(progress.preview_joints, dtype=np.float32)[::PREVIEW_EVERY].copy()
            on_progress(progress.step, progress.total, [preview] + [None] * (len(jobs) - 1))

        started, names = time.monotonic(), ", ".join(job.id for job in jobs)
        try:
            if len(jobs) > 1:
                results = pipeline.generate_many([job.request for job in jobs], report, should_cancel)
            else:
                results = [RUNS[jobs[0].kind](pipeline, jobs[0].request, report, should_cancel)]
        except Cancelled:
            log.info("job %s cancelled", names)
            raise JobCancelled() from None
        log.info("job %s (%s) done in %.2f s", names, jobs[0].kind, time.monotonic() - started)
        return results

    def job_view(self, job_id: str, cancel: bool = False, result_format: str = "json") -> dict:
        """A job as JSON: motions are kept as arrays (compact) and turned into dicts or packed text
        (one of RESULT_FORMATS) only here."""
        view = self.jobs.cancel(job_id) if cancel else self.jobs.view(job_id)
        if "preview" in view:
            view["preview"] = {"fps": canonical.FPS / PREVIEW_EVERY, "positions": np.round(view["preview"], 3).tolist()}
        if "result" in view and result_format == "npz":
            view["result"] = [packed.encode_motion(motion.to_arrays(), compress=False) for motion in view["result"]]
        elif "result" in view:
            view["result"] = [motion.to_dict() for motion in view["result"]]
        return view


# --- HTTP ----------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Handler(BaseHTTPRequestHandler):
    """One request: authenticate, route, answer JSON. Errors are {"error": {"code", "message"}}."""

    protocol_version = "HTTP/1.1"  # keep-alive for polling clients
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, 40 ms on every answer (a poll took 46 ms on loopback).
    disable_nagle_algorithm = True
    server_version = f"mosa-engine/{__version__}"
    timeout = 30  # a client that stops sending mid-request frees its thread
    server: "EngineServer"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        self._body_unread = True
        try:
            self._authenticate()
            path, _, query = self.path.partition("?")
            status, payload = self._route(method, path.rstrip("/"), query)
        except ApiError as exc:
            status, payload = exc.status, {"error": {"code": exc.code, "message": exc.message}}
        except RequestError as exc:
            status, payload = exc.status, {"error": {"code": exc.code, "message": str(exc)}}
        except Exception as exc:  # a bug must not kill the service; the client learns what happened
            log.exception("internal error on %s %s", method, self.path)
            status, payload = 500, {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}}
        try:
            body = json.dumps(payload, allow_nan=False).encode()
        except ValueError:  # NaN from the model must not reach a client as invalid JSON
            log.error("non-finite values in the answer to %s %s", method, self.path)
            status, body = (
                500,
                json.dumps(
                    {"error": {"code": "internal", "message": "the answer held NaN or infinite values"}}
                ).encode(),
            )
        if self._body_unread:
            self._drop_body()
        self._reply(status, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Refusals from the HTTP layer (a malformed request line, headers too large, a method with
        no handler) in the API's JSON error shape; a method with no handler is a 405, as elsewhere."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command!r:.40} is not supported"
        phrase = HTTPStatus(code).phrase
        error = {"code": phrase.lower().replace(" ", "_").replace("-", "_"), "message": message or phrase}
        body = json.dumps({"error": error}).encode()
        self.close_connection = True  # the rest of a request the parser gave up on is not worth reading
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.wfile.write(body)

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <token>' header")
        if not hmac.compare_digest(token.strip().encode(), self.server.engine.config.token.encode()):
            raise ApiError(401, "unauthorized", "wrong token")

    def _route(self, method: str, path: str, query: str) -> tuple[int, dict]:
        engine = self.server.engine
        if path == "/v1/health" and method == "GET":
            return 200, engine.health()
        kind = path.removeprefix("/v1/")
        if kind in PARSERS and method == "POST":
            request = PARSERS[kind](self._json_body(), engine.config.limits)
            try:
                job = engine.jobs.submit(kind, request)
            except QueueFull as exc:
                raise ApiError(429, "queue_full", str(exc)) from None
            log.info("job %s (%s) queued", job.id, kind)
            return 202, {"id": job.id, "state": job.state}
        if path.startswith("/v1/jobs/") and method in ("GET", "DELETE"):
            job_id = path[len("/v1/jobs/") :]
            try:
                return 200, engine.job_view(job_id, method == "DELETE", self._result_format(query))
            except JobExpired as exc:
                raise ApiError(404, "expired", exc.args[0]) from None
            except JobNotFound as exc:
                raise ApiError(404, "not_found", exc.args[0]) from None
        if path == "/v1/health" or kind in PARSERS or path.startswith("/v1/jobs/"):
            raise ApiError(405, "method_not_allowed", f"{method} is not supported on {path}")
        raise ApiError(404, "not_found", f"no endpoint {path}")

    @staticmethod
    def _result_format(query: str) -> str:
        """The `result` query parameter of a job's URL (json when absent); nothing else is accepted."""
        fields = urllib.parse.parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(fields) - {"result"})
        if unknown:
            raise ApiError(400, "bad_query", f"unknown query parameter {unknown[0]!r:.40}; only 'result' is accepted")
        formats = fields.get("result", ["json"])
        if len(formats) != 1 or formats[0] not in RESULT_FORMATS:
            raise ApiError(400, "bad_query", f"result must be one of {', '.join(RESULT_FORMATS)}")
        return formats[0]

    def _json_body(self) -> Any:
        """The body as JSON, refused before it is parsed when its type, length or nesting is wrong."""
        length = self._declared_length()
        if length is None:
            raise ApiError(411, "length_required", "send the body with a Content-Length header")
        limit = self.server.engine.config.limits.max_body_bytes
        content_type, _, parameters = self.headers.get("Content-Type", "").partition(";")
        charset = parameters.strip().lower().removeprefix("charset=").strip('"')
        if content_type.strip().lower() != "application/json" or charset not in ("", "utf-8"):
            self._drop_body()
            raise ApiError(415, "unsupported_media_type", "send the body as 'Content-Type: application/json' (UTF-8)")
        if length > limit:
            self._drop_body()
            raise ApiError(413, "body_too_large", f"the body has {length} bytes; at most {limit} are accepted")
        self._body_unread = False
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise ApiError(
                408, "request_timeout", f"the body's {length} bytes did not arrive in {self.timeout} s"
            ) from None
        return validation.load_json(raw, self.server.engine.config.limits)

    def _declared_length(self) -> int | None:
        """The Content-Length as a number, None when absent or not a plain decimal (not '²', not '-1')."""
        header = self.headers.get("Content-Length", "").strip()
        if header.isascii() and header.isdigit() and len(header) <= 18:
            return int(header)
        return None

    def _drop_body(self) -> None:
        """Read past a body the answer does not need, so that a kept-alive connection's next request
        starts where it should; a body of unknown length means closing the connection instead."""
        self._body_unread = False
        length = self._declared_length()
        if length is not None:
            self._discard(length)
        elif "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            self.close_connection = True

    def _discard(self, length: int) -> None:
        """Read and drop a refused body, so that the client sees the 413 rather than a reset;
        a huge one is not worth reading: close the connection instead."""
        if length > DISCARD_AT_MOST:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)
        except TimeoutError:
            self.close_connection = True

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class EngineServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        super().__init__((engine.config.host, engine.config.port), Handler)

    def shutdown_request(self, request: socket.socket) -> None:
        """A lingering close: closing with unread bytes (a refused body, the rest of a request the
        parser gave up on) makes the kernel send a reset, which can destroy the answer before the
        client reads it. So stop writing, read and drop until the client closes (or LINGER_S)."""
        try:
            request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            drained = 0
            while drained < DISCARD_AT_MOST and (left := deadline - time.monotonic()) > 0:
                request.settimeout(left)
                chunk = request.recv(1 << 16)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:  # the client is gone already, or too slow to wait for
            pass
        self.close_request(request)


# --- the serve command ---------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--checkpoint", default=str(DEFAULT_CHECKPOINT), help="model checkpoint (.pt; default: the bundled demo model)"
    )
    parser.add_argument("--token-file", required=True, help="file holding the bearer token clients must send")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_precision_argument(parser)
    parser.add_argument(
        "--threads", type=int, default=default_threads(), help="torch's CPU threads (default: half the cores)"
    )
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host other than loopback")
    parser.add_argument("--log-file", help="rotating log file (default: in the temp folder)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone (the add-on's Blender)")
    parser.add_argument("--max-queued", type=int, default=JobSettings.max_queued, help="jobs waiting at most")
    parser.add_argument(
        "--max-batch", type=int, default=8, help="generate jobs with the same options run together, at most"
    )
    parser.add_argument("--result-ttl", type=float, default=JobSettings.result_ttl_s, help="seconds results are kept")
    parser.add_argument(
        "--max-finished",
        type=int,
        default=JobSettings.max_finished,
        help="finished jobs whose results are kept, at most",
    )


def run(args: argparse.Namespace) -> int:
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"error: --host {args.host} is not a loopback address; add --allow-remote to serve the network",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} must be 0..65535 (0 picks a free one)", file=sys.stderr)
        return 2
    if args.log_file and (problem := file_problem(Path(args.log_file), "engine.log")):
        print(f"error: --log-file {args.log_file} {problem}", file=sys.stderr)
        return 2
    if not Path(args.checkpoint).is_file():
        print(f"error: checkpoint {args.checkpoint} not found", file=sys.stderr)
        return 2
    if min(args.max_batch, args.max_queued, args.max_finished, args.threads) < 1:
        print("error: --max-batch, --max-queued, --max-finished and --threads must be at least 1", file=sys.stderr)
        return 2
    if not args.result_ttl > 0:
        print("error: --result-ttl must be more than 0 seconds", file=sys.stderr)
        return 2
    try:
        token = Path(args.token_file).read_text().strip()
    except OSError as exc:
        print(f"error: cannot read the token file: {exc}", file=sys.stderr)
        return 2
    if len(token) < 16:
        print(f"error: the token in {args.token_file} is shorter than 16 characters", file=sys.stderr)
        return 2
    log_file = args.log_file or str(Path(tempfile.gettempdir()) / "mosa-engine" / f"engine-{os.getpid()}.log")
    try:
        _setup_logging(Path(log_file))
    except OSError as exc:  # what file_problem cannot foresee: a full disk, a file without write permission
        print(f"error: cannot write the log file {log_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.parent_pid is not None:
        _exit_with_parent(args.parent_pid)

    config = ServiceConfig(
        checkpoint=args.checkpoint,
        token=token,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        host=args.host,
        port=args.port,
        log_file=log_file,
        jobs=JobSettings(
            max_queued=args.max_queued,
            max_batch=args.max_batch,
            result_ttl_s=args.result_ttl,
            max_finished=args.max_finished,
        ),
    )
    try:
        server = EngineServer(Engine(config))
    except OSError as exc:
        reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(f"error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    if not _is_loopback(args.host):
        print(f"warning: serving on {host}:{port}, reachable from the network; keep the token secret", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("listening on %s:%s (pid %s, checkpoint %s)", host, port, os.getpid(), args.checkpoint)
    listening = {
        "event": "listening",
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "version": __version__,
        "checkpoint": args.checkpoint,
    }
    print(json.dumps(listening), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.engine.jobs.close()
        log.info("stopped")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _setup_logging(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(threadName)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _exit_with_parent(parent_pid: int) -> None:
    """End this process when the parent dies, even by SIGKILL: the kernel's signal and a poll."""
    if sys.platform.startswith("linux") and os.getppid() == parent_pid:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:
        while True:
            if not _is_alive(parent_pid):
                log.info("parent process %s is gone; exiting", parent_pid)
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _is_alive(pid: int) -> bool:
    """True while the process runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal probe is all we have
    return state != "Z"
