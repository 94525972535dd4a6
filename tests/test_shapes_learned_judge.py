"""The ShapesWorld learned judge (unigen.worlds.shapes.learned_judge) at tiny size: labelled data,
the training step, and the judge folder read back as a VQAScore reward."""

import numpy as np
import pytest

from unigen.data.trajectory import Trajectory
from unigen.files import png_bytes
from unigen.rewards.vqa import QUESTION, VQAScore
from unigen.worlds.shapes.judge import ShapesJudge
from unigen.rewards.qwen_vl import save_judge
from unigen.worlds.shapes.learned_judge import (JudgeSize, agreement, caption_loss, examples, fit, loaded_judge,
                                                new_judge)

TINY = JudgeSize(hidden=32, layers=1, heads=4, vision_hidden=32, vision_depth=1)


@pytest.fixture(scope="module")
def data():
    return examples(16, seed=3, vq_batch=32)


def test_examples_are_balanced_and_labelled_by_the_strict_judge(data):
    strict = ShapesJudge(strict=True)
    assert sum(e.label for e in data) == 8
    for e in data:
        image = np.asarray(e.image)
        assert image.shape == (32, 32, 3)
        assert e.label == float(strict.judge(image, e.metadata)[0]) and e.prompt == e.metadata["prompt"]
        assert e.caption == strict.describe(image)


def test_fit_lowers_the_loss_and_the_folder_scores_as_vqa_score(data, tmp_path):
    model, tokenizer = new_judge(TINY, seed=0)
    judge = loaded_judge(model, tokenizer, tmp_path / "judge")
    before = caption_loss(judge, data).item()
    assert fit(judge, data, steps=12, batch_size=8, lr=5e-3, warmup=2, log_every=0) == 12
    assert caption_loss(judge, data).item() < before - 0.5  # it learns to say what the picture shows
    assert agreement(judge, data) in {i / 16 for i in range(17)}
    reward = VQAScore(str(save_judge(tmp_path / "judge", model, tokenizer)), batch_size=5)  # the trained weights
    trajs = [Trajectory(prompt_id=str(i), sample_idx=0, prompt=e.prompt, png=png_bytes(np.asarray(e.image)))
             for i, e in enumerate(data)]
    expected = judge.p_yes([e.image for e in data], [QUESTION.format(prompt=e.prompt) for e in data])
    np.testing.assert_allclose(reward(trajs), expected.numpy(), atol=1e-5)


def test_the_learned_loop_trains_on_the_committed_judge_and_reports_both_judges():
    import yaml

    from unigen.pipeline.report.judges import reward_judges
    from unigen.worlds.shapes.learned_judge import LEARNED_JUDGE

    config = yaml.safe_load(open("configs/loop/shapes_learned.yaml"))
    rewards = config["score"]["rewards"]
    judges = reward_judges(config["fit"]["config"], rewards, "shapes_strict")
    assert list(judges) == ["shapes_learned"]  # weighted by the learned judge, evaluated by the strict one
    reward = VQAScore(rewards["shapes_learned"]["init_args"]["judge"])
    image = np.zeros((32, 32, 3), np.uint8)
    image[2:14, 2:14] = (230, 30, 30)
    score = reward([Trajectory(prompt_id="0", sample_idx=0, prompt="a photo of a red square", png=png_bytes(image))])
    assert 0.0 < score[0] < 1.0 and str(LEARNED_JUDGE).endswith(rewards["shapes_learned"]["init_args"]["judge"])
