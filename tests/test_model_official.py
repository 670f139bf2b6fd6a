"""Importing the authors' MoSa.zip: a synthetic archive with the official layout, opt.txt format,
key names and shapes (mosa-spec.md section 5; random values, saved with torch.save as the authors
do) imports strictly, every tensor lands unchanged, and the imported model generates motion.

The expected keys and shapes below are written out from the spec, independently of the model
code, so a renamed attribute or a changed layer size fails here.
"""
from __future__ import annotations

import io
import os
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import checkpoint
from engine.official import OPTIONS_END, OPTIONS_START, import_official, parse_options
from engine.transformer import block_causal_mask, scale_levels, scale_rotary_frequencies
from tests.model_fixtures import one_thread, save_tiny_clip  # noqa: F401  (one_thread: autouse)
from conftest import ENGINE_PYTHON, ROOT

ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1")  # the engine subprocess, on cores shared with other work
SCALES = (3, 6, 10, 15, 20, 25, 30, 36, 42, 49)
OFFICIAL_TOKENIZER = {"width": 256, "width_mul": (1, 2, 1), "depth": 2, "code_dim": 512, "scales": SCALES, "nb_code_st": 256,
                      "nb_code_ed": 768, "phi_k": 3, "phi_depth": 2, "slot_group": 10, "mu": 0.99, "using_znorm": True,
                      "shared_codebook": False}  # fmt: skip
OFFICIAL_TRANSFORMER = {"latent_dim": 384, "n_heads": 6, "n_layers": 8, "ff_size": 768, "dropout": 0.2, "cond_drop_prob": 0.1,
                        "mm_attn": False, "unit_length": 4, "max_motion_length": 196}  # fmt: skip
# A small model in the same layout (Motion-X run of the archive): opt.txt decides the sizes.
SMALL_TOKENIZER = {**OFFICIAL_TOKENIZER, "width": 16, "code_dim": 16, "nb_code_st": 8, "nb_code_ed": 26, "slot_group": 1}
SMALL_TRANSFORMER = {**OFFICIAL_TRANSFORMER, "latent_dim": 32, "n_heads": 2, "n_layers": 1, "ff_size": 64}


def codebook_sizes(options: dict) -> list[int]:
    start, end = options["nb_code_st"], options["nb_code_ed"]
    return [round(start + (end - start) * q / 9) for q in range(10)]


def tokenizer_shapes(o: dict) -> dict[str, tuple[int, ...]]:
    """Every key of the release's tokenizer state_dict and its shape, from mosa-spec.md section 5."""
    shapes: dict[str, tuple[int, ...]] = {"virtual_slot": (196 * o["slot_group"], 263), "initted": (1,)}
    widths = [o["width"] * m for m in o["width_mul"]]

    def conv(name, c_out, c_in, kernel):
        shapes[name + ".weight"], shapes[name + ".bias"] = (c_out, c_in, kernel), (c_out,)

    def norm(name, c):
        shapes[name + ".weight"], shapes[name + ".bias"] = (c,), (c,)

    def resblock(name, c_in, c_out):
        norm(name + ".norm1", c_in), conv(name + ".conv1", c_out, c_in, 3), norm(name + ".norm2", c_out), conv(name + ".conv2", c_out, c_out, 3)
        if c_in != c_out:
            conv(name + ".nin_shortcut", c_out, c_in, 1)

    def attention(name, c):
        norm(name + ".norm", c), conv(name + ".qkv", 3 * c, c, 1), conv(name + ".proj_out", c, c, 1)

    def middle(name, c):
        resblock(name + ".block_1", c, c), attention(name + ".attn_1", c), resblock(name + ".block_2", c, c)

    conv("encoder.conv_in", o["width"], 263, 3)
    for level, width in enumerate(widths):
        c_in = o["width"] if level == 0 else widths[level - 1]
        for b in range(o["depth"]):
            resblock(f"encoder.down.{level}.block.{b}", c_in if b == 0 else width, width)
            if level == 2:
                attention(f"encoder.down.{level}.attn.{b}", width)
        if level < 2:
            conv(f"encoder.down.{level}.downsample.conv", width, width, 3)
    middle("encoder.mid", widths[2]), norm("encoder.norm_out", widths[2]), conv("encoder.conv_out", o["code_dim"], widths[2], 1)

    conv("decoder.conv_in", widths[2], o["code_dim"], 1), middle("decoder.mid", widths[2])
    for level, width in enumerate(widths):
        c_in = widths[2] if level == 2 else widths[level + 1]
        for b in range(o["depth"] + 1):
            resblock(f"decoder.up.{level}.block.{b}", c_in if b == 0 else width, width)
            if level == 2:
                attention(f"decoder.up.{level}.attn.{b}", width)
        conv(f"decoder.up.{level}.upsample.conv", width, width, 3)
    norm("decoder.norm_out", widths[0]), conv("decoder.conv_out", 263, widths[0], 3)

    for q, size in enumerate(codebook_sizes(o)):
        shapes[f"quantizer.layers.{q}.initted"] = (1,)
        shapes[f"quantizer.layers.{q}.code_sum"] = shapes[f"quantizer.layers.{q}.codebook"] = (size, o["code_dim"])
        shapes[f"quantizer.layers.{q}.code_count"] = (size,)
        for j in range(o["phi_depth"]):
            conv(f"quantizer.phis.{q}.phi.{j}.0", o["code_dim"], o["code_dim"], o["phi_k"])
    return shapes


def transformer_shapes(t: dict, tokenizer: dict) -> dict[str, tuple[int, ...]]:
    """Every key of the release's transformer state_dict (buffers aside) and its shape."""
    d, ff, code_dim = t["latent_dim"], t["ff_size"], tokenizer["code_dim"]
    shapes = {"input_process.weight": (d, code_dim), "input_process.bias": (d,), "input_emb.weight": (d, 512), "input_emb.bias": (d,),
              "pos_start": (1, 3, d), "len_embed.weight": (49, d), "lvl_embed.weight": (10, d)}  # fmt: skip
    for i in range(t["n_layers"]):
        for norm in ("ln0", "ln0_t", "ln1", "ln2"):
            shapes[f"blocks.{i}.{norm}.scale"] = (d,)
        for attention in ("attn0", "attn"):
            for projection in ("key", "query", "value", "proj"):
                shapes[f"blocks.{i}.{attention}.{projection}.weight"], shapes[f"blocks.{i}.{attention}.{projection}.bias"] = (d, d), (d,)
        shapes[f"blocks.{i}.mlp.0.c_fc1.weight"] = shapes[f"blocks.{i}.mlp.0.c_fc2.weight"] = (ff, d)
        shapes[f"blocks.{i}.mlp.0.c_proj.weight"] = (d, ff)
    for q, size in enumerate(codebook_sizes(tokenizer)):
        shapes[f"heads.{q}.weight"], shapes[f"heads.{q}.bias"] = (size, d), (size,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in shapes.items()}
    for key in state:
        if key.endswith("code_count"):
            state[key] = state[key].abs() * 100
        if key.endswith("initted"):
            state[key] = torch.ones(1)
    return state


def transformer_buffers(head_dim: int) -> dict[str, torch.Tensor]:
    """The release's fixed buffers (freqs_cis complex64 [236, 32], lvl_1L, attn_mask)."""
    return {"freqs_cis": scale_rotary_frequencies(SCALES, head_dim, 100.0, 64.0), "lvl_1L": scale_levels(SCALES)[None],
            "attn_mask": block_causal_mask(SCALES)}  # fmt: skip


def opt_text(options: dict) -> str:
    """opt.txt as the authors write it: sorted `key: value` lines between the marker lines."""
    lines = [OPTIONS_START] + [f"{key}: {value}" for key, value in sorted(options.items())] + [OPTIONS_END]
    return "\n".join(lines) + "\n"


def saved(content) -> bytes:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


def npy(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values)
    return buffer.getvalue()


def add_dataset(archive: zipfile.ZipFile, dataset: str, tokenizer: dict, transformer: dict, keys: tuple[str, str], seed: int) -> dict:
    """Write one dataset's runs (plus a decoy tokenizer run) and return what was written."""
    generator = torch.Generator().manual_seed(seed)
    vq_name, trans_name = f"rvq_{dataset}_scales10_l2", f"sar_{dataset}_b64"
    root = f"MoSa/checkpoints/{dataset}"
    vq_state = random_state(tokenizer_shapes(tokenizer), generator)
    trans_state = random_state(transformer_shapes(transformer, tokenizer), generator)
    trans_state.update(transformer_buffers(transformer["latent_dim"] // transformer["n_heads"]))
    rng = np.random.default_rng(seed)
    mean, std = rng.normal(size=263).astype(np.float32), rng.uniform(0.2, 1.5, 263).astype(np.float32)
    archive.writestr(f"{root}/{vq_name}/opt.txt", opt_text({**tokenizer, "dataset_name": dataset, "name": vq_name}))
    archive.writestr(f"{root}/{vq_name}/meta/mean.npy", npy(mean))
    archive.writestr(f"{root}/{vq_name}/meta/std.npy", npy(std))
    archive.writestr(f"{root}/{vq_name}/model/net_best_fid.tar", saved({keys[0]: vq_state, "total_it": 300000}))
    archive.writestr(f"{root}/{trans_name}/opt.txt", opt_text({**transformer, "vq_name": vq_name, "dataset_name": dataset, "name": trans_name}))
    with_clip = {**trans_state, "clip_model.positional_embedding": torch.zeros(77, 512)}  # dropped on import
    archive.writestr(f"{root}/{trans_name}/model/net_best_fid.tar", saved({keys[1]: with_clip, "ep": 500}))
    # A run that is not the one vq_name names, and the separately shipped evaluator.
    archive.writestr(f"{root}/rvq_ablation_6scales/opt.txt", opt_text({**tokenizer, "scales": (1, 2, 3), "name": "rvq_ablation_6scales"}))
    archive.writestr(f"{root}/text_mot_match/model/finest.tar", saved({"movement_encoder": {}}))
    return {"tokenizer": vq_state, "transformer": trans_state, "mean": mean, "std": std}


@pytest.fixture(scope="module")
def official_zip(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("release") / "MoSa.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        written = {"t2m": add_dataset(archive, "t2m", OFFICIAL_TOKENIZER, OFFICIAL_TRANSFORMER, ("vq_model", "t2m_transformer"), 0),
                   "motionx": add_dataset(archive, "motionx", SMALL_TOKENIZER, SMALL_TRANSFORMER, ("net", "trans"), 1)}  # fmt: skip
    return path, written


def assert_lands_unchanged(module: torch.nn.Module, written: dict[str, torch.Tensor]) -> None:
    exported = module.state_dict()
    assert sorted(exported) == sorted(written)
    for key, tensor in written.items():
        assert exported[key].shape == tensor.shape and torch.equal(exported[key].to(tensor.dtype), tensor), key


def test_opt_txt_values_parse_as_python_literals():
    text = opt_text({"scales": SCALES, "width_mul": (1, 2, 1), "using_znorm": True, "mu": 0.99, "name": "rvq x", "depth": 2})
    options = parse_options("extra header\n" + text + "trailer\n", "opt.txt")
    assert options == {"depth": 2, "mu": 0.99, "name": "rvq x", "scales": SCALES, "using_znorm": True, "width_mul": (1, 2, 1)}
    with pytest.raises(ValueError, match="no options block"):
        parse_options("name: x\n", "run/opt.txt")


def test_official_size_import_from_the_command_line_then_generate(official_zip, tmp_path):
    path, written = official_zip
    out = tmp_path / "mosa-t2m.pt"
    started = time.perf_counter()
    finished = subprocess.run([ENGINE_PYTHON, "-m", "engine", "import-official", str(path), "--out", str(out)],
                              cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "HumanML3D" in finished.stdout
    print(f"import-official: {time.perf_counter() - started:.1f} s")
    imported = checkpoint.load(out)
    assert imported.meta["preset"] == "official" and imported.meta["dataset"] == "HumanML3D"
    assert imported.meta["tokenizer_run"] == {"name": "rvq_t2m_scales10_l2", "total_it": 300000}
    assert imported.text_encoder == "clip-vit-b32" and imported.transformer.config.text_dim == 512
    assert sum(p.numel() for p in imported.tokenizer.parameters()) == pytest.approx(34.5e6, rel=0.01)
    assert_lands_unchanged(imported.tokenizer, written["t2m"]["tokenizer"])
    assert_lands_unchanged(imported.transformer, written["t2m"]["transformer"])
    assert np.array_equal(imported.mean, written["t2m"]["mean"]) and np.array_equal(imported.std, written["t2m"]["std"])

    from engine.pipeline import GenerateRequest, Pipeline
    from transformers import CLIPTextConfig, CLIPTextModel

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
    assert imported.meta["dataset"] == "Motion-X" and imported.meta["transformer_run"] == {"name": "sar_motionx_b64", "ep": 500}
    assert_lands_unchanged(imported.tokenizer, written["motionx"]["tokenizer"])
    assert_lands_unchanged(imported.transformer, written["motionx"]["transformer"])


def small_zip(path: Path, edit_tokenizer=None, tokenizer_options: dict | None = None, vq_name: str | None = None) -> Path:
    """A one-dataset archive of the small model, with one thing changed."""
    with zipfile.ZipFile(path, "w") as archive:
        add_dataset(archive, "t2m", tokenizer_options or SMALL_TOKENIZER, SMALL_TRANSFORMER, ("vq_model", "t2m_transformer"), 2)
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
    wrong = small_zip(tmp_path / "wrong.zip", lambda state: state.update({"encoder.conv_in.weight": torch.zeros(16, 263, 1)}))
    with pytest.raises(ValueError, match=r"'encoder.conv_in.weight' has shape \(16, 263, 1\); the model expects \(16, 263, 3\)"):
        import_official(wrong)
    no_run = small_zip(tmp_path / "no-run.zip", vq_name="rvq_gone")
    with pytest.raises(ValueError, match="names tokenizer run 'rvq_gone', which is not in"):
        import_official(no_run)
    other_lookup = small_zip(tmp_path / "znorm.zip", tokenizer_options={**SMALL_TOKENIZER, "using_znorm": False})
    with pytest.raises(ValueError, match="using_znorm is False"):
        import_official(other_lookup)

    finished = subprocess.run([ENGINE_PYTHON, "-m", "engine", "import-official", str(wrong), "--out", str(tmp_path / "x.pt")],
                              cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert finished.returncode == 2 and "encoder.conv_in.weight" in finished.stderr.splitlines()[-1]
    assert not (tmp_path / "x.pt").exists()
