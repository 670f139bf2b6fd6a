"""Command line: `python -m engine <command> ...`.

Each command lives in its own module, imported only when used, so `python -m engine --help`
stays fast and a command's heavy imports (torch, transformers) cost nothing to the others.
A command module provides `configure(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.allocator import keep_freed_memory

COMMANDS: dict[str, tuple[str, str]] = {
    "build-dataset": ("engine.datasets.build", "build the demo dataset (HumanML3D layout) from real motion"),
    "train": ("engine.train", "train the tokenizer or the transformer"),
    "generate": ("engine.cli", "generate motion from a prompt"),
    "edit": ("engine.cli", "regenerate the masked frames of a motion"),
    "extend": ("engine.cli", "add seconds of motion before or after a motion"),
    "inbetween": ("engine.cli", "generate the motion between key poses of a motion"),
    "eval": ("engine.evaluate", "evaluate a checkpoint"),
    "import-official": ("engine.official", "import the authors' MoSa.zip"),
    "models": ("engine.models", "list, download (the authors' HumanML3D and Motion-X models) or remove models"),
    "serve": ("engine.service", "run the local HTTP service"),
    "bench": ("engine.bench", "time generation and write a table"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m engine", description="MoSa text-to-motion engine")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    # Parse the command name first, then hand the rest to that command's own parser.
    known, rest = parser.parse_known_args(argv[:1])
    module = importlib.import_module(COMMANDS[known.command][0])
    sub = argparse.ArgumentParser(prog=f"python -m engine {known.command}", description=COMMANDS[known.command][1])
    module.configure(sub, known.command)
    args = sub.parse_args(argv[1:])
    args.command = known.command
    return int(module.run(args) or 0)


if __name__ == "__main__":
    keep_freed_memory()  # the engine's own process only, not a test runner calling main()
    sys.exit(main())
