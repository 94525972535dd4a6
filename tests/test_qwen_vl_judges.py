"""Qwen2.5-VL and Qwen3-VL as VQAScore judges: tiny random models in the published folder layout
(a real Qwen2 BPE tokenizer, each family's chat template, the PIL image processor, no torchvision),
scoring real ShapesWorld renders; a batch's scores equal one-at-a-time scores whatever the padding
side and image sizes; configs/loop/janus_pro_7b.yaml's judge spec at tiny size."""

import io
import math
import random

import pytest
import torch
import yaml
from PIL import Image

from tests.conftest import REPO
from unigen.data.trajectory import Trajectory
from unigen.files import png_bytes
from unigen.rewards import REWARDS
from unigen.rewards.qwen_vl import FAMILIES, qwen_tokenizer, qwen_vl_config, random_judge, save_judge
from unigen.rewards.vqa import VLMJudge, VQAScore
from unigen.worlds.shapes.grammar import benchmark_prompts
from unigen.worlds.shapes.plan import make_plan
from unigen.worlds.shapes.render import render
from unigen.worlds.shapes.vocab import WORDS

PROMPTS = {
    "qwen2_5_vl": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                   "<|vision_start|><|image_pad|><|vision_end|>Is it red?<|im_end|>\n<|im_start|>assistant\n"),
    "qwen3_vl": ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Is it red?<|im_end|>\n"
                 "<|im_start|>assistant\n"),
}
MODEL_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """family -> a tiny random judge folder in the published layout."""
    root = tmp_path_factory.mktemp("judges")
    return {family: str(save_judge(root / family, *random_judge(family, words=list(WORDS))))
            for family in MODEL_CLASSES}


@pytest.fixture(params=list(MODEL_CLASSES))
def judge_dir(request, folders):
    return request.param, folders[request.param]


def shapes_trajectories(n: int = 6, seed: int = 0) -> list[Trajectory]:
    """Real ShapesWorld renders (32 px) of benchmark prompts, every other one upscaled to another
    size and aspect, so the batch holds different numbers of image patches."""
    rng = random.Random(seed)
    out = []
    for i, record in enumerate(benchmark_prompts(per_category=1, seed=seed)[:n]):
        image = Image.fromarray(render(make_plan(record.metadata, rng), 32, rng))
        if i % 2:
            image = image.resize((32 + 16 * i, 48), Image.NEAREST)
        out.append(Trajectory(record.id, 0, record.prompt, png=png_bytes(image), metadata=record.metadata))
    return out


def log_scores(reward: VQAScore, trajs: list[Trajectory], batch_size: int) -> list[float]:
    reward.batch_size = batch_size
    return [math.log(v) for v in reward(trajs)]


def test_folder_loads_without_torchvision_with_each_familys_template(judge_dir):
    family, path = judge_dir
    judge = VQAScore(path).judge
    assert isinstance(judge, VLMJudge)
    assert type(judge.model).__name__ == MODEL_CLASSES[family]
    assert type(judge.processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    assert not hasattr(judge.processor, "video_processor")
    assert judge.prompt("Is it red?") == PROMPTS[family]
    tok = judge.processor.tokenizer
    assert tok.convert_ids_to_tokens(judge.yes_id) == "Yes"  # one BPE token, as the assistant writes it
    in_context = tok(PROMPTS[family] + "Yes", add_special_tokens=False)["input_ids"]
    assert in_context[-1] == judge.yes_id and tok.convert_ids_to_tokens(in_context[-2]) == "Ċ"


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_batched_equals_one_at_a_time(judge_dir, padding_side):
    _, path = judge_dir
    reward = VQAScore(path, padding_side=padding_side)
    trajs = shapes_trajectories()
    inputs = reward.judge.processor(images=[Image.open(io.BytesIO(t.png)) for t in trajs],
                                    text=[reward.judge.prompt(t.prompt) for t in trajs], padding=True,
                                    return_tensors="pt")
    patches = inputs["image_grid_thw"].prod(-1).tolist()
    assert len(set(patches)) > 1 and (inputs["attention_mask"] == 0).any()  # sizes and padding really differ
    batched, single = log_scores(reward, trajs, 6), log_scores(reward, trajs, 1)
    assert batched == pytest.approx(single, abs=1e-5, rel=0)
    assert max(batched) - min(batched) > 1e-3  # the renders and prompts reach the score


def test_right_padded_rows_are_read_at_their_last_real_token(judge_dir):
    """The check above can fail: reading the last column of a right-padded batch (a pad for every
    shorter row) gives other scores than the judge's."""
    _, path = judge_dir
    judge = VQAScore(path, padding_side="right").judge
    trajs = shapes_trajectories(4)
    images = [Image.open(io.BytesIO(t.png)) for t in trajs]
    with torch.no_grad():
        inputs = judge.processor(images=images, text=[judge.prompt(t.prompt) for t in trajs], padding=True,
                                 return_tensors="pt")
        last_column = judge.model(**inputs).logits[:, -1].log_softmax(-1)[:, judge.yes_id]
    padded = inputs["attention_mask"][:, -1] == 0
    assert padded.any()
    right = judge.p_yes(images, [t.prompt for t in trajs]).log()
    assert ((last_column - right).abs()[padded] > 1e-3).all()


def test_scores_real_shapes_renders_and_sees_the_image(judge_dir):
    _, path = judge_dir
    judge = VQAScore(path).judge
    red, blue = (Image.fromarray(render(make_plan({"include": [{"class": "circle", "count": 1, "color": c}]},
                                                  random.Random(0)), 32, random.Random(0))) for c in ("red", "blue"))
    p = judge.p_yes([red, blue], ["Does this image show 'a red circle'? Please answer yes or no."] * 2)
    assert ((0 < p) & (p < 1)).all() and abs(math.log(p[0]) - math.log(p[1])) > 1e-4


def test_janus_pro_7b_judge_spec_at_tiny_size(folders):
    """configs/loop/janus_pro_7b.yaml's VQAScore specs (training reward and DPG-Bench's evaluation
    reward), with only the Qwen2.5-VL folder and the device replaced, build and score renders."""
    path = folders["qwen2_5_vl"]
    loop = yaml.safe_load((REPO / "configs/loop/janus_pro_7b.yaml").read_text())
    specs = [loop["score"]["rewards"]["vqa"], loop["also_evaluate"][0]["reward"]]
    trajs = shapes_trajectories(4)
    for spec in specs:
        assert spec["class_path"] == "vqa_score" and "Qwen2.5-VL" in spec["init_args"]["judge"]
        reward = REWARDS.build({**spec, "init_args": {**spec["init_args"], "judge": path, "device": "cpu"}})
        assert reward.judge.model.dtype == torch.bfloat16
        values = reward(trajs + [Trajectory("none", 0, "no image")])
        assert values[-1] is None and all(0 < v < 1 for v in values[:-1])


@pytest.mark.parametrize("family,billions", [("qwen2_5_vl", 8.29), ("qwen3_vl", 8.77)])
def test_7b_size_configs_have_the_published_parameter_counts(family, billions):
    """The benchmark's 7B-size configs (built on the meta device): Qwen2.5-VL-7B-Instruct 8.29B,
    Qwen3-VL-8B-Instruct 8.77B parameters."""
    config = qwen_vl_config(family, qwen_tokenizer(), "7b")
    with torch.device("meta"):
        model = FAMILIES[family][1](config)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.005)
