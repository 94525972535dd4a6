"""The unified-model interface over Janus: heads, VQ round trip, special ids, presets, real sizes."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from unigen.models.loading import load_model, load_spec


def test_head_shapes_and_mixed_embedding(micro_model):
    spec = micro_model.spec
    ids = torch.tensor([[spec.bos_id, 70, 71, spec.boi_id, 5, 9, spec.eoi_id]])
    image_mask = torch.tensor([[False, False, False, False, True, True, False]])
    embeds = micro_model.embed_mixed(ids, image_mask)
    hidden_size = micro_model.hf.config.text_config.hidden_size
    assert embeds.shape == (1, 7, hidden_size)
    # image positions use the generation embeddings, text positions the text table
    assert torch.allclose(embeds[0, 4], micro_model.embed_image(torch.tensor(5)))
    assert torch.allclose(embeds[0, 1], micro_model.embed_text(torch.tensor(70)))
    hidden, _ = micro_model.backbone(embeds)
    assert micro_model.text_logits(hidden).shape == (1, 7, micro_model.hf.config.text_config.vocab_size)
    assert micro_model.image_logits(hidden).shape == (1, 7, spec.image.codebook_size)


def test_vq_round_trip_shapes(micro_model):
    spec = micro_model.spec
    pixels = torch.rand(3, 3, spec.image.size, spec.image.size) * 2 - 1
    ids = micro_model.encode_images(pixels)
    assert ids.shape == (3, spec.image.num_tokens) == (3, spec.image.grid[0] * spec.image.grid[1])
    assert ids.min() >= 0 and ids.max() < spec.image.codebook_size
    decoded = micro_model.decode_images(ids)
    assert decoded.shape == pixels.shape
    assert decoded.min() >= -1 and decoded.max() <= 1
    # decoding then re-encoding the codebook's own reconstructions is stable for most positions
    assert decoded.dtype == torch.float32


def test_special_ids_are_distinct_and_in_vocab(micro_model):
    spec = micro_model.spec
    ids = [spec.bos_id, spec.eos_id, spec.pad_id, spec.boi_id, spec.eoi_id]
    assert len(set(ids)) == 5
    assert max(ids) < micro_model.hf.config.text_config.vocab_size
    assert spec.tokenizer.convert_ids_to_tokens(spec.boi_id) == "<begin_of_image>"
    prompt = spec.encode_prompt("a red circle")
    assert prompt[0] == spec.bos_id
    assert spec.tokenizer.decode(prompt[1:]) == "<|User|>: a red circle\n\n<|Assistant|>:"


def test_vision_and_vq_frozen_by_default_generation_parts_trainable(micro_model):
    hf = micro_model.hf
    assert not any(p.requires_grad for p in hf.model.vision_model.parameters())
    assert not any(p.requires_grad for p in hf.model.vqmodel.parameters())
    assert all(p.requires_grad for p in hf.model.generation_head.parameters())
    assert all(p.requires_grad for p in hf.model.language_model.parameters())
    unfrozen = load_model("janus-micro", freeze=())
    assert all(p.requires_grad for p in unfrozen.hf.model.vqmodel.parameters())


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown model preset 'janus-huge'"):
        load_spec("janus-huge")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="unknown freeze part"):
        load_model("janus-micro", freeze=("lm",))
    (tmp_path / "config.json").write_text('{"model_type": "janus"}')
    with pytest.raises(FileNotFoundError, match="no tokenizer found"):
        load_spec(str(tmp_path))


@pytest.mark.parametrize(
    "name, published",
    # Published sizes (Hugging Face model pages of deepseek-ai/Janus-Pro-7B and -1B): 7.42B and 2.09B.
    [("janus_pro_7b", 7.42e9), ("janus_pro_1b", 2.09e9)],
)
def test_real_janus_pro_architecture_builds_on_meta_with_published_size(name, published):
    with torch.device("meta"):
        model = load_model(str(REPO / "configs" / "models" / f"{name}.yaml"))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - published) / published < 0.01, count
    assert model.spec.image.num_tokens == 576 and model.spec.image.grid == (24, 24)
    assert model.spec.image.codebook_size == 16384
    assert all(p.is_meta for p in model.parameters())
