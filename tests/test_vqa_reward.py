"""VQAScore plumbing with tiny random judges: a LLaVA folder (transformers VLM), janus-micro's understanding branch."""

import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

from unigen.data.trajectory import Trajectory
from unigen.models.loading import load_model
from unigen.models.janus.tokenizer import byte_level_tokenizer
from unigen.rewards.images import png_bytes
from unigen.rewards.vqa import UnifiedJudge, VLMJudge, VQAScore

CHAT = ("{% for m in messages %}<|User|>: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<image_placeholder>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
        "{% if add_generation_prompt %}\n\n<|Assistant|>:{% endif %}")


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    """A tiny random LLaVA (CLIP vision tower + Llama) with an offline tokenizer and processor."""
    torch.manual_seed(0)
    tok = byte_level_tokenizer()
    config = LlavaConfig(
        text_config=dict(model_type="llama", vocab_size=320, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=16, patch_size=4, projection_dim=32),
        image_token_id=tok.convert_tokens_to_ids(tok.image_token), vision_feature_layer=-1,
    )
    path = tmp_path_factory.mktemp("llava")
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 16},
                                                                  crop_size={"height": 16, "width": 16}),
                               tokenizer=tok, chat_template=CHAT, patch_size=4, num_additional_image_tokens=1,
                               vision_feature_select_strategy="default")
    processor.save_pretrained(path)
    return str(path)


def _trajs():
    colors = [(255, 0, 0), (0, 200, 30), (10, 10, 250)]
    out = [Trajectory(f"p{i}", 0, f"a thing number {i}" + " long" * i,
                      png=png_bytes(Image.new("RGB", (12 + 4 * i, 16), c))) for i, c in enumerate(colors)]
    out.insert(1, Trajectory("none", 0, "no image here"))
    return out


def _check_batching(reward):
    trajs = _trajs()
    reward.batch_size = 3
    batched = reward(trajs)
    reward.batch_size = 1
    single = reward(trajs)
    assert batched[1] is None and single[1] is None
    got = [v for v in batched if v is not None]
    assert len(got) == 3 and all(0.0 < v < 1.0 for v in got)
    assert got == pytest.approx([v for v in single if v is not None], rel=1e-4, abs=1e-6)
    return got


def test_vlm_judge_from_folder(llava_dir):
    reward = VQAScore(llava_dir)
    assert isinstance(reward.judge, VLMJudge)
    assert type(reward.judge.model).__name__ == "LlavaForConditionalGeneration"
    _check_batching(reward)


def test_vlm_judge_sees_the_image(llava_dir):
    judge = VQAScore(llava_dir).judge
    images = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    p = judge.p_yes(images, ["Does this image show 'x'?"] * 2)
    assert p[0] != pytest.approx(float(p[1]), rel=1e-6)


def test_vlm_judge_dtype(llava_dir):
    reward = VQAScore(llava_dir, dtype="bfloat16")
    assert reward.judge.model.dtype == torch.bfloat16
    values = reward(_trajs())
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in values if v is not None)


def test_unified_self_judge_preset():
    torch.manual_seed(0)
    reward = VQAScore("janus-micro")
    assert isinstance(reward.judge, UnifiedJudge)
    tokenizer = reward.judge.model.spec.tokenizer
    assert reward.judge.model.image_question("q").count(tokenizer.image_token) == 16  # one per vision patch
    _check_batching(reward)
    judge = reward.judge
    images = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    p = judge.p_yes(images, ["Does this image show 'x'?"] * 2)
    assert p[0] != pytest.approx(float(p[1]), rel=1e-6)  # the image reaches the answer


def test_unified_judge_from_saved_folder_and_dtype(tmp_path):
    load_model("janus-micro").save_pretrained(str(tmp_path))
    reward = VQAScore(str(tmp_path), dtype="bfloat16")
    assert isinstance(reward.judge, UnifiedJudge)
    assert reward.judge.model.hf.dtype == torch.bfloat16
    assert sum(v is not None for v in reward(_trajs())) == 3


def test_unified_judge_accepts_a_live_model():
    model = load_model("janus-micro")
    reward = VQAScore(model)
    assert reward.judge.model is model


def test_bad_backend():
    with pytest.raises(ValueError, match="backend"):
        VQAScore("janus-micro", backend="clip")
