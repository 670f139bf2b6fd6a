"""bench --momask: MoMask's code is imported from the folder given, here a tiny stand-in tree
with the same module and class names (the real checkout is the user's, and not on this machine's tests)."""

import sys
import textwrap

import pytest
import torch

from engine import momask_reference
from engine.bench import momask_table

STAND_IN = {
    "models/__init__.py": "",
    "models/mask_transformer/__init__.py": "",
    "models/vq/__init__.py": "",
    "models/mask_transformer/transformer.py": """
        import clip  # the real module imports OpenAI's clip at the top
        import torch

        class MaskTransformer(torch.nn.Module):
            def __init__(self, code_dim, cond_mode, latent_dim, ff_size, num_layers, num_heads, dropout, clip_dim,
                         cond_drop_prob, opt, **kwargs):
                super().__init__()
                self.opt, self.layer = opt, torch.nn.Linear(clip_dim, opt.num_tokens)
                self.clip_model = self.load_and_freeze_clip("ViT-B/32")

            def generate(self, conds, m_lens, timesteps, cond_scale, temperature, topk_filter_thres, gsample):
                self.calls = (timesteps, cond_scale)
                logits = self.layer(self.encode_text(conds))
                return logits.argmax(-1)[:, None].expand(-1, int(m_lens.max()))

        class ResidualTransformer(MaskTransformer):
            def generate(self, motion_ids, conds, m_lens, temperature, cond_scale):
                self.calls = cond_scale
                assert self.encode_text(conds).shape == (len(conds), 512)
                return motion_ids[..., None].expand(-1, -1, self.opt.num_quantizers)
    """,
    "models/vq/model.py": """
        import torch

        class RVQVAE(torch.nn.Module):
            def __init__(self, args, input_width, nb_code, code_dim, *sizes):
                super().__init__()
                self.codebook = torch.nn.Embedding(nb_code, input_width)

            def forward_decoder(self, ids):
                return self.codebook(ids[..., 0]).repeat_interleave(4, dim=1)
    """,
}


@pytest.fixture
def stand_in(tmp_path):
    for name, text in STAND_IN.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield tmp_path
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def test_momask_runs_from_the_given_tree_with_its_workload(stand_in):
    models = momask_reference.load(stand_in, torch.device("cpu"))
    features = momask_reference.generate(models, ["a", "b"], torch.randn(2, momask_reference.CLIP_DIM))
    assert features.shape == (2, momask_reference.FRAMES, 263)
    assert models.mask.calls == (10, 4) and models.residual.calls == 5  # 10 iterations, guidance 4, then 5
    encoded = []
    momask_reference.generate(models, ["c"], lambda prompts: encoded.append(prompts) or torch.zeros(1, 512))
    assert encoded == [["c"], ["c"]]  # end to end: the text is encoded once per transformer, as MoMask does


def test_a_folder_that_is_not_momask_codes_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a checkout of EricGuo5513/momask-codes"):
        momask_reference.check_checkout(tmp_path)


def test_the_table_gives_the_ratio():
    table = momask_table([(1, 0.5, 1.0), (32, 8.0, 32.0)])
    assert "| 1 | 0.500 | 1.000 | 2.00x |" in table and "| 32 | 0.250 | 1.000 | 4.00x |" in table
