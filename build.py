#!/usr/bin/env python3
"""The project's one task runner. Standard library only: it must run on a bare Python 3.11.

    python3 build.py setup            create (or reuse) the cached environment
    python3 build.py test [ARGS]      setup, lint, then the whole suite; ARGS pass through to pytest
                                      (with no ARGS the Blender tests run again on 4.5 LTS)
    python3 build.py lint             ruff format --check and ruff check (config in pyproject.toml)
    python3 build.py fuzz [N]         the HTTP and file fuzz tests with N examples each (default 5000)
    python3 build.py soak [ARGS]      1,000 jobs, random cancels, two engine kills; memory and open files
    python3 build.py extension        build dist/mosa-<version>.zip and validate it as Blender does
    python3 build.py demo ["prompt"]  the extension on a Rigify human: writes out/<name>.blend, .bvh,
                                      a contact sheet and a GIF (--help lists the options)
    python3 build.py bench [--quick]  seconds per generated sample of both presets, and the Blender side: out/bench.md

The environment lives outside the clone, in $MOSA_CACHE (default ~/.cache/mosa-blender), in a
folder named after the hash of requirements.lock and the Python version, so a second run reuses
it in seconds and a changed lock builds a fresh one beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MOSA_CACHE", Path.home() / ".cache" / "mosa-blender"))


@dataclass(frozen=True)
class Environment:
    """A virtual environment built from one lock file."""

    name: str
    lock: Path

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.lock.read_bytes())
        digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
        return digest.hexdigest()[:16]

    @property
    def path(self) -> Path:
        return CACHE / f"{self.name}-{self.key}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def ensure(self) -> Path:
        """Build the environment unless a complete one for this lock already exists."""
        marker = self.path / ".complete"
        if marker.exists():
            return self.python
        started = time.monotonic()
        print(f"[setup] building the {self.name} environment in {self.path} (once per lock)", flush=True)
        # Built in place under its final name (venv scripts record their path); the marker,
        # written last, tells a complete environment from an interrupted one.
        shutil.rmtree(self.path, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(self.path)
        pip = [str(self.python), "-m", "pip", "install", "--disable-pip-version-check"]
        run(pip + ["--upgrade", "pip"])
        run(pip + ["-r", str(self.lock)])
        marker.write_text(self.key)
        print(f"[setup] ready in {time.monotonic() - started:.0f} s", flush=True)
        return self.python


MAIN = Environment("env", ROOT / "requirements.lock")
# Blender 4.5 LTS: the Blender-side tests run a second time on it (the engine stays on MAIN).
BLENDER_LTS = Environment("blender45", ROOT / "requirements-blender45.lock")


def run(cmd: list[str], **kwargs) -> None:
    """Run a command, echoing it; stop the whole task with its exit code if it fails."""
    print("+", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, **kwargs)
    if code != 0:
        sys.exit(code)


def cmd_setup(args: argparse.Namespace) -> Path:
    started = time.monotonic()
    python = MAIN.ensure()
    print(f"[setup] environment {MAIN.path} ({time.monotonic() - started:.1f} s)", flush=True)
    return python


def cmd_test(args: argparse.Namespace) -> None:
    """The whole suite on the main environment, then the Blender-side tests on 4.5 LTS.

    Extra arguments go to the main run only; `--no-lts` skips the second run (for quick loops).
    """
    python = cmd_setup(args)
    lint(python)
    pytest_args = [a for a in args.passthrough if a != "--no-lts"]
    run([str(python), "-m", "pytest", *pytest_args], cwd=ROOT)
    if "--no-lts" in args.passthrough or pytest_args:
        return
    lts_python = BLENDER_LTS.ensure()
    env = dict(os.environ, MOSA_BLENDER_ONLY="1", MOSA_ENGINE_PYTHON=str(python))
    print("[test] Blender-side tests again on the 4.5 LTS module", flush=True)
    run([str(lts_python), "-m", "pytest", "-p", "no:cacheprovider"], cwd=ROOT, env=env)


def lint(python: Path) -> None:
    """Formatting and lint with ruff, as configured in pyproject.toml ([tool.ruff])."""
    run([str(python), "-m", "ruff", "format", "--check", "."], cwd=ROOT)
    run([str(python), "-m", "ruff", "check", "."], cwd=ROOT)


def cmd_lint(args: argparse.Namespace) -> None:
    lint(cmd_setup(args))


FUZZ_TESTS = ["tests/test_service_fuzz.py", "tests/test_file_fuzz.py"]


def cmd_fuzz(args: argparse.Namespace) -> None:
    """The suite's fuzz tests, longer: N Hypothesis examples per test instead of a few hundred."""
    python = cmd_setup(args)
    examples = args.passthrough[0] if args.passthrough else os.environ.get("MOSA_FUZZ_EXAMPLES", "5000")
    env = dict(os.environ, MOSA_FUZZ_EXAMPLES=str(int(examples)))
    pytest = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-show-statistics"]
    run([*pytest, *FUZZ_TESTS], cwd=ROOT, env=env)


def cmd_soak(args: argparse.Namespace) -> None:
    """tests/soak.py: many jobs against a real engine on loopback, with cancels and kills; prints the figures."""
    python = cmd_setup(args)
    run([str(python), str(ROOT / "tests" / "soak.py"), *args.passthrough], cwd=ROOT)


def extension_files() -> list[tuple[Path, str]]:
    """(source, name in the zip): the add-on at the zip root, retarget/ and engine/ inside it."""
    files = [(ROOT / "blender_manifest.toml", "blender_manifest.toml")]
    trees = [(ROOT / "mosa_blender", ""), (ROOT / "retarget", "retarget/"), (ROOT / "engine", "engine/")]
    for folder, prefix in trees:
        for source in sorted(folder.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts and source.suffix != ".pyc":
                files.append((source, prefix + source.relative_to(folder).as_posix()))
    return files


def cmd_extension(args: argparse.Namespace) -> Path:
    """Zip the extension, then run Blender's own validator (bl_pkg's blender_ext.py) on it."""
    import tomllib
    import zipfile

    python = cmd_setup(args)
    version = tomllib.loads((ROOT / "blender_manifest.toml").read_text())["version"]
    archive = ROOT / "dist" / f"mosa-{version}.zip"
    archive.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for source, name in extension_files():
            zipped.write(source, name)
    # Blender's validator is a standalone script inside the bpy package; find it without importing bpy.
    scripts = subprocess.check_output(
        [
            str(python),
            "-c",
            "import importlib.util, pathlib; "
            "print(next(pathlib.Path(importlib.util.find_spec('bpy').origin).parent.glob('*/scripts')))",
        ],
        text=True,
    ).strip()
    run(
        [
            str(python),
            f"{scripts}/addons_core/bl_pkg/cli/blender_ext.py",
            "validate",
            str(archive),
            f"--valid-tags={scripts}/modules/_bpy_internal/extensions/tags.py",
        ]
    )
    print(f"[extension] {archive} ({archive.stat().st_size / 1e6:.1f} MB)", flush=True)
    return archive


def cmd_demo(args: argparse.Namespace) -> None:
    """Build the extension, then run the demo (demo/__main__.py) in the environment's Python."""
    if any(arg in ("-h", "--help") for arg in args.passthrough):
        python = cmd_setup(args)
        run([str(python), "-m", "demo", "--help"], cwd=ROOT)
        return
    archive = cmd_extension(args)
    run([str(MAIN.python), "-m", "demo", "--extension", str(archive), *args.passthrough], cwd=ROOT)


def cmd_bench(args: argparse.Namespace) -> None:
    """Time generation (engine/bench.py) and Generate in Blender on the built extension; the tables go to out/bench.md and stdout."""
    archive = cmd_extension(args)  # Generate in Blender is timed on the installed extension
    bench = [str(MAIN.python), "-m", "engine", "bench", "--out", str(ROOT / "out" / "bench.md")]
    run([*bench, "--extension", str(archive), *args.passthrough], cwd=ROOT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="create or reuse the cached environment").set_defaults(func=cmd_setup)
    test = commands.add_parser("test", help="run the whole test suite (extra args go to pytest)")
    test.set_defaults(func=cmd_test)
    commands.add_parser("lint", help="ruff format --check and ruff check").set_defaults(func=cmd_lint)
    commands.add_parser("fuzz", help="the fuzz tests with N examples each (default 5000)").set_defaults(func=cmd_fuzz)
    commands.add_parser(
        "soak", help="1,000 jobs with cancels and engine kills (--help lists the options)", add_help=False
    ).set_defaults(func=cmd_soak)
    commands.add_parser("extension", help="build and validate the extension zip").set_defaults(func=cmd_extension)
    # No help of its own: --help goes through to the demo, which lists its options.
    commands.add_parser(
        "demo", help="prompt in, animated Rigify human out (python3 build.py demo --help)", add_help=False
    ).set_defaults(func=cmd_demo)
    commands.add_parser(
        "bench",
        help="seconds per generated sample, both presets, and the Blender side (--quick: batch 1 only)",
        add_help=False,
    ).set_defaults(func=cmd_bench)
    # Unknown arguments belong to the command (pytest's -x, -k ...; the demo's prompt; bench's --quick), so parse leniently.
    args, args.passthrough = parser.parse_known_args(argv)
    if args.passthrough and args.command not in ("test", "demo", "bench", "fuzz", "soak"):
        parser.error(f"unrecognized arguments: {' '.join(args.passthrough)}")
    args.func(args)


if __name__ == "__main__":
    main()
