"""A synthetic archive in the authors' exact release layout, written by our own code from
mosa-spec.md section 5 and the authors' option files (not from the model code), with random values
saved with torch.save as the authors do.

What the release does and a reimplementation easily gets wrong is written out here on purpose:
both opt.txt kinds carry vq_name (the tokenizer options define it too), the code-space
convolutions are 3 wide, and the attention mask buffer is 1 where a token may look, 0 elsewhere.
Used by the import tests and by the download tests, which serve such a zip on 127.0.0.1.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from engine.official import OPTIONS_END, OPTIONS_START
from engine.transformer import scale_levels, scale_rotary_frequencies

SCALES = (3, 6, 10, 15, 20, 25, 30, 36, 42, 49)
OFFICIAL_TOKENIZER = {
    "width": 256,
    "width_mul": (1, 2, 1),
    "depth": 2,
    "code_dim": 512,
    "scales": SCALES,
    "nb_code_st": 256,
    "nb_code_ed": 768,
    "phi_k": 3,
    "phi_depth": 2,
    "slot_group": 10,
    "mu": 0.99,
    "using_znorm": True,
    "shared_codebook": False,
}
OFFICIAL_TRANSFORMER = {
    "latent_dim": 384,
    "n_heads": 6,
    "n_layers": 8,
    "ff_size": 768,
    "dropout": 0.2,
    "cond_drop_prob": 0.1,
    "mm_attn": False,
    "unit_length": 4,
    "max_motion_length": 196,
}
# A small model in the same layout (Motion-X run of the archive): opt.txt decides the sizes.
SMALL_TOKENIZER = {
    **OFFICIAL_TOKENIZER,
    "width": 16,
    "code_dim": 16,
    "nb_code_st": 8,
    "nb_code_ed": 26,
    "slot_group": 1,
}
SMALL_TRANSFORMER = {**OFFICIAL_TRANSFORMER, "latent_dim": 32, "n_heads": 2, "n_layers": 1, "ff_size": 64}
TOKENIZER_OPTIONS_VQ_NAME = "svq_nq10_nc256_768_noshare_phik3_phidepth"  # vq_option.py's default


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
        (
            norm(name + ".norm1", c_in),
            conv(name + ".conv1", c_out, c_in, 3),
            norm(name + ".norm2", c_out),
            conv(name + ".conv2", c_out, c_out, 3),
        )
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
    (
        middle("encoder.mid", widths[2]),
        norm("encoder.norm_out", widths[2]),
        conv("encoder.conv_out", o["code_dim"], widths[2], 3),
    )

    conv("decoder.conv_in", widths[2], o["code_dim"], 3), middle("decoder.mid", widths[2])
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
    shapes = {
        "input_process.weight": (d, code_dim),
        "input_process.bias": (d,),
        "input_emb.weight": (d, 512),
        "input_emb.bias": (d,),
        "pos_start": (1, 3, d),
        "len_embed.weight": (49, d),
        "lvl_embed.weight": (10, d),
    }
    for i in range(t["n_layers"]):
        for norm in ("ln0", "ln0_t", "ln1", "ln2"):
            shapes[f"blocks.{i}.{norm}.scale"] = (d,)
        for attention in ("attn0", "attn"):
            for projection in ("key", "query", "value", "proj"):
                (
                    shapes[f"blocks.{i}.{attention}.{projection}.weight"],
                    shapes[f"blocks.{i}.{attention}.{projection}.bias"],
                ) = (d, d), (d,)
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


def release_attention_mask(scales: tuple[int, ...]) -> torch.Tensor:
    """The release's attn_mask buffer (1, 1, L, L): 1 where token i may look at token j (j's scale
    is i's or coarser), 0 elsewhere; the model applies it as masked_fill(mask == 0, -inf)."""
    scale_of_token = torch.cat([torch.full((size,), q) for q, size in enumerate(scales)])
    return (scale_of_token[None, :] <= scale_of_token[:, None]).float()[None, None]


def transformer_buffers(head_dim: int) -> dict[str, torch.Tensor]:
    """The release's fixed buffers (freqs_cis complex64 [236, 32], lvl_1L, attn_mask)."""
    return {
        "freqs_cis": scale_rotary_frequencies(SCALES, head_dim, 100.0, 64.0),
        "lvl_1L": scale_levels(SCALES)[None],
        "attn_mask": release_attention_mask(SCALES),
    }


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


def add_dataset(
    archive: zipfile.ZipFile, dataset: str, tokenizer: dict, transformer: dict, keys: tuple[str, str], seed: int
) -> dict:
    """Write one dataset's runs (plus a decoy tokenizer run) and return what was written."""
    generator = torch.Generator().manual_seed(seed)
    vq_name, trans_name = f"rvq_{dataset}_scales10_l2", f"sar_{dataset}_b64"
    root = f"MoSa/checkpoints/{dataset}"
    vq_state = random_state(tokenizer_shapes(tokenizer), generator)
    trans_state = random_state(transformer_shapes(transformer, tokenizer), generator)
    trans_state.update(transformer_buffers(transformer["latent_dim"] // transformer["n_heads"]))
    rng = np.random.default_rng(seed)
    mean, std = rng.normal(size=263).astype(np.float32), rng.uniform(0.2, 1.5, 263).astype(np.float32)
    # The tokenizer options define vq_name too (for the residual predictor), left at its default.
    tokenizer_options = {**tokenizer, "dataset_name": dataset, "name": vq_name, "vq_name": TOKENIZER_OPTIONS_VQ_NAME}
    archive.writestr(f"{root}/{vq_name}/opt.txt", opt_text(tokenizer_options))
    archive.writestr(f"{root}/{vq_name}/meta/mean.npy", npy(mean))
    archive.writestr(f"{root}/{vq_name}/meta/std.npy", npy(std))
    archive.writestr(f"{root}/{vq_name}/model/net_best_fid.tar", saved({keys[0]: vq_state, "total_it": 300000}))
    archive.writestr(
        f"{root}/{trans_name}/opt.txt",
        opt_text({**transformer, "vq_name": vq_name, "dataset_name": dataset, "name": trans_name}),
    )
    with_clip = {**trans_state, "clip_model.positional_embedding": torch.zeros(77, 512)}  # dropped on import
    archive.writestr(f"{root}/{trans_name}/model/net_best_fid.tar", saved({keys[1]: with_clip, "ep": 500}))
    # A run that is not the one vq_name names, and the separately shipped evaluator.
    ablation = {**tokenizer_options, "scales": (1, 2, 3), "name": "rvq_ablation_6scales"}
    archive.writestr(f"{root}/rvq_ablation_6scales/opt.txt", opt_text(ablation))
    archive.writestr(f"{root}/text_mot_match/model/finest.tar", saved({"movement_encoder": {}}))
    return {"tokenizer": vq_state, "transformer": trans_state, "mean": mean, "std": std}


def write_release_zip(path: Path) -> dict:
    """MoSa.zip with both datasets: the official-size HumanML3D run and a small Motion-X one.

    Returns what was written, per dataset: the two state dicts and the feature statistics.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        return {
            "t2m": add_dataset(
                archive, "t2m", OFFICIAL_TOKENIZER, OFFICIAL_TRANSFORMER, ("vq_model", "t2m_transformer"), 0
            ),
            "motionx": add_dataset(archive, "motionx", SMALL_TOKENIZER, SMALL_TRANSFORMER, ("net", "trans"), 1),
        }
