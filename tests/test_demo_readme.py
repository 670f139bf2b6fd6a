"""Every shell command in the README is real: its command and options exist (checked against the
tool's own --help), and a test, the demo or CI runs it for real."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# README command (its first words) -> the files that run it for real, each with a string that
# shows it does.
RUN_BY: dict[str, list[tuple[str, str]]] = {
    "python3 build.py demo": [("tests/test_demo.py", '"demo"')],
    "python3 build.py test": [(".ci/run", "python3 build.py test")],
    "python3 build.py extension": [("tests/test_blender_addon.py", '"extension"')],
    "python -m engine import-official": [("tests/test_model_official.py", '"import-official"')],
    # Against the local stand-in for Google Drive and the Hub (tests/model_server.py).
    "python -m engine models download": [("tests/test_models_download.py", '"download", "official"')],
    "python -m engine models list": [("tests/test_models_download.py", '"list", "--json"')],
    "python -m engine generate": [("tests/test_service_cli.py", '"generate"')],
    "python -m engine edit": [("tests/test_service_cli.py", '"edit"')],
    # Downloads cannot run offline in the suite; the test checks the tool and its options exist.
    "hf download": [],
    "python -m engine serve": [
        ("tests/test_service_process.py", '"serve"'),
        ("tests/test_service_process.py", '"--allow-remote"'),
    ],
}


def readme_commands() -> list[str]:
    """Each line of the README's ```bash blocks."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, flags=re.DOTALL)
    return [
        line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")
    ]


def covering_prefix(command: str) -> str:
    prefixes = [prefix for prefix in RUN_BY if command == prefix or command.startswith(prefix + " ")]
    if not prefixes:
        raise AssertionError(
            f"README command {command!r} is run by no test; add it to RUN_BY with the test that runs it"
        )
    return prefixes[0]


def help_text(prefix: str) -> str:
    """The --help of the command a README line calls, from the tool itself."""
    words = prefix.split()
    if words[:2] == ["python3", "build.py"]:
        argv = [sys.executable, str(ROOT / "build.py"), *words[2:], "--help"]
    elif words[0] == "hf":  # the Hugging Face CLI in the environment's bin folder
        argv = [str(Path(sys.executable).parent / "hf"), *words[1:], "--help"]
    else:  # python -m engine COMMAND
        argv = [sys.executable, *words[1:], "--help"]
    finished = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, f"{argv} failed:\n{finished.stderr}"
    return finished.stdout


def test_readme_has_the_commands_a_user_needs():
    commands = readme_commands()
    for needed in (
        "python3 build.py demo",
        "python3 build.py test",
        "python3 build.py extension",
        "python -m engine import-official",
        "python -m engine serve",
    ):
        assert any(command.startswith(needed) for command in commands), f"the README lacks {needed!r}"


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_is_run_by_a_test_and_its_options_exist(command):
    prefix = covering_prefix(command)
    for path, evidence in RUN_BY[prefix]:
        squeezed = "".join((ROOT / path).read_text().split())  # the formatter may spread a list over lines
        assert "".join(evidence.split()) in squeezed, f"{path} does not run {prefix!r} (no {evidence!r} in it)"
    if prefix == "python3 build.py test":
        return  # its arguments belong to pytest
    options = [word.split("=")[0] for word in shlex.split(command) if word.startswith("--")]
    usage = help_text(prefix)
    for option in options:
        assert option in usage, f"README passes {option} to {prefix!r}, which does not take it:\n{usage}"
