"""Importing the authors' MoSa.zip: a synthetic archive with the official layout, opt.txt format,
key names and shapes (tests/release_layout.py) imports strictly without --run, every tensor lands
unchanged, and the imported model generates motion.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import ENGINE_PYTHON, ROOT

from engine import checkpoint
from engine.official import import_official, parse_options
from tests.model_fixtures import one_thread, save_tiny_clip  # noqa: F401  (one_thread: autouse)
from tests.release_layout import (
    SCALES,
    SMALL_TOKENIZER,
    SMALL_TRANSFORMER,
    add_dataset,
    opt_text,
    saved,
    write_release_zip,
)

ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1")  # the engine subprocess, on cores shared with other work


@pytest.fixture(scope="module")
def official_zip(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("release") / "MoSa.zip"
    return path, write_release_zip(path)


def assert_lands_unchanged(module: torch.nn.Module, written: dict[str, torch.Tensor]) -> None:
    exported = module.state_dict()
    assert sorted(exported) == sorted(written)
    for key, tensor in written.items():
        assert exported[key].shape == tensor.shape and torch.equal(exported[key].to(tensor.dtype), tensor), key


def test_opt_txt_values_parse_as_python_literals():
    text = opt_text(
        {"scales": SCALES, "width_mul": (1, 2, 1), "using_znorm": True, "mu": 0.99, "name": "rvq x", "depth": 2}
    )
    options = parse_options("extra header\n" + text + "trailer\n", "opt.txt")
    assert options == {
        "depth": 2,
        "mu": 0.99,
        "name": "rvq x",
        "scales": SCALES,
        "using_znorm": True,
        "width_mul": (1, 2, 1),
    }
    with pytest.raises(ValueError, match="no options block"):
        parse_options("name: x\n", "run/opt.txt")


def test_official_size_import_from_the_command_line_then_generate(official_zip, tmp_path):
    path, written = official_zip
    out = tmp_path / "mosa-t2m.pt"
    started = time.perf_counter()
    finished = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", "import-official", str(path), "--out", str(out)],
        cwd=ROOT,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "HumanML3D" in finished.stdout
    print(f"import-official: {time.perf_counter() - started:.1f} s")
    imported = checkpoint.load(out)
    assert imported.meta["preset"] == "official" and imported.meta["dataset"] == "HumanML3D"
    assert imported.meta["tokenizer_run"] == {"name": "rvq_t2m_scales10_l2", "total_it": 300000}
    assert imported.text_encoder == "clip-vit-b32" and imported.transformer.config.text_dim == 512
    assert sum(p.numel() for p in imported.tokenizer.parameters()) == 34_996_127  # the release's count
    assert_lands_unchanged(imported.tokenizer, written["t2m"]["tokenizer"])
    assert_lands_unchanged(imported.transformer, written["t2m"]["transformer"])
    assert np.array_equal(imported.mean, written["t2m"]["mean"]) and np.array_equal(imported.std, written["t2m"]["std"])

    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.pipeline import GenerateRequest, Pipeline

    clip_folder = save_tiny_clip(tmp_path / "clip")
    config = CLIPTextConfig.from_pretrained(clip_folder)
    config.hidden_size = 512  # the width of CLIP ViT-B/32's token features, which the official transformer reads
    CLIPTextModel(config).save_pretrained(clip_folder)
    pipeline = Pipeline.from_checkpoint(imported, "cpu", text_encoder_path=clip_folder)
    started = time.perf_counter()
    motions = pipeline.generate(GenerateRequest("a person walks", frames=40, seed=0))
    print(f"one generation: {time.perf_counter() - started:.1f} s")
    assert len(motions) == 1 and np.asarray(motions[0].positions).shape == (40, 22, 3)
    assert np.isfinite(np.asarray(motions[0].positions)).all()


def test_the_other_dataset_and_file_variants_import_with_sizes_from_opt_txt(official_zip):
    path, written = official_zip
    imported = import_official(path, "motionx")
    assert imported.tokenizer.config.width == 16 and imported.transformer.config.d_model == 32
    assert imported.meta["dataset"] == "Motion-X" and imported.meta["transformer_run"] == {
        "name": "sar_motionx_b64",
        "ep": 500,
    }
    assert_lands_unchanged(imported.tokenizer, written["motionx"]["tokenizer"])
    assert_lands_unchanged(imported.transformer, written["motionx"]["transformer"])

    # The released 1/0 mask means the same to the teacher-forced pass as to the cached steps.
    model, generator = imported.transformer, torch.Generator().manual_seed(3)
    text, lengths = torch.randn(2, 77, 512, generator=generator), torch.tensor([196, 72])
    inputs = torch.randn(2, sum(SCALES) - SCALES[0], model.config.code_dim, generator=generator)
    with torch.no_grad():
        full = model(text, lengths, inputs)
        context, length_embedding = model.text_context(text, lengths)
        cache = model.new_cache()
        for q in range(len(SCALES)):
            span = slice(model.scale_starts[q] - SCALES[0], model.scale_starts[q + 1] - SCALES[0])
            stepped = model.step(q, context, length_embedding, None if q == 0 else inputs[:, span], cache)
            assert (stepped - full[q]).abs().max() < 1e-4, q


def small_zip(
    path: Path, edit_tokenizer=None, tokenizer_options: dict | None = None, vq_name: str | None = None
) -> Path:
    """A one-dataset archive of the small model, with one thing changed."""
    with zipfile.ZipFile(path, "w") as archive:
        add_dataset(
            archive, "t2m", tokenizer_options or SMALL_TOKENIZER, SMALL_TRANSFORMER, ("vq_model", "t2m_transformer"), 2
        )
    if edit_tokenizer is None and vq_name is None:
        return path
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    model = "MoSa/checkpoints/t2m/rvq_t2m_scales10_l2/model/net_best_fid.tar"
    if edit_tokenizer is not None:
        content = torch.load(io.BytesIO(members[model]), weights_only=True)
        edit_tokenizer(content["vq_model"])
        members[model] = saved(content)
    if vq_name is not None:
        opt = "MoSa/checkpoints/t2m/sar_t2m_b64/opt.txt"
        members[opt] = members[opt].replace(b"vq_name: rvq_t2m_scales10_l2", f"vq_name: {vq_name}".encode())
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_broken_archives_say_what_is_wrong(tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        import_official(corrupt)
    with pytest.raises(FileNotFoundError, match="official MoSa.zip"):
        import_official(tmp_path / "absent.zip")
    with pytest.raises(ValueError, match="no checkpoints/motionx"):
        import_official(small_zip(tmp_path / "t2m-only.zip"), "motionx")

    missing = small_zip(tmp_path / "missing.zip", lambda state: state.pop("quantizer.phis.4.phi.1.0.bias"))
    with pytest.raises(ValueError, match=r"missing keys \['quantizer.phis.4.phi.1.0.bias'\]"):
        import_official(missing)
    wrong = small_zip(
        tmp_path / "wrong.zip", lambda state: state.update({"encoder.conv_in.weight": torch.zeros(16, 263, 1)})
    )
    with pytest.raises(
        ValueError, match=r"'encoder.conv_in.weight' has shape \(16, 263, 1\); the model expects \(16, 263, 3\)"
    ):
        import_official(wrong)
    no_run = small_zip(tmp_path / "no-run.zip", vq_name="rvq_gone")
    with pytest.raises(ValueError, match="names tokenizer run 'rvq_gone', which is not in"):
        import_official(no_run)
    other_lookup = small_zip(tmp_path / "znorm.zip", tokenizer_options={**SMALL_TOKENIZER, "using_znorm": False})
    with pytest.raises(ValueError, match="using_znorm is False"):
        import_official(other_lookup)

    finished = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", "import-official", str(wrong), "--out", str(tmp_path / "x.pt")],
        cwd=ROOT,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2 and "encoder.conv_in.weight" in finished.stderr.splitlines()[-1]
    assert not (tmp_path / "x.pt").exists()


def test_the_out_file_is_never_replaced_by_surprise_nor_left_half_written(tmp_path, monkeypatch, capsys):
    from engine.__main__ import main

    archive = small_zip(tmp_path / "MoSa.zip")

    def imports(out: Path, *extra: str) -> tuple[int, str]:
        code = main(["import-official", str(archive), "--out", str(out), *extra])
        return code, capsys.readouterr().err.strip()

    mine = tmp_path / "mine.pt"
    mine.write_text("precious")
    code, err = imports(mine)
    assert (
        code == 2 and err == f"error: --out would replace {mine}; add --overwrite to replace, or choose another --out"
    )
    assert mine.read_text() == "precious"

    folder = tmp_path / "folder.pt"
    folder.mkdir()
    code, err = imports(folder)
    assert code == 2 and err.startswith(f"error: --out {folder} is a folder; give a file name in it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MoSa.zip", "folder.pt", "mine.pt"]

    def half_written(payload, path):  # what torch's writer does on a full disk
        Path(path).write_bytes(b"x" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", half_written)
    monkeypatch.setattr("shutil.disk_usage", lambda path: SimpleNamespace(free=512))
    code, err = imports(tmp_path / "x.pt")
    assert code == 2 and err.startswith(f"error: cannot write {tmp_path / 'x.pt'}: the disk holding {tmp_path} is full")
    assert "\n" not in err and not (tmp_path / "x.pt.partial").exists() and not (tmp_path / "x.pt").exists()
    monkeypatch.undo()

    code, err = imports(mine, "--overwrite")
    assert code == 0 and checkpoint.load(mine).meta["preset"] == "official"
