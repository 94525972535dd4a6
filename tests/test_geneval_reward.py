"""GenEval rules on hand-made detections, and GenEvalScore plumbing with a tiny random OWLv2 folder."""

import pytest
import torch
from PIL import Image
from transformers import Owlv2Config, Owlv2ForObjectDetection

from unigen.data.trajectory import Trajectory
from unigen.models.janus.tokenizer import byte_level_tokenizer
from unigen.rewards.geneval import GenEvalScore, nms
from unigen.rewards.geneval_rules import Detection, classify_color, labelled_checks, relations
from unigen.rewards.images import png_bytes

POSITION = {"tag": "position", "include": [{"class": "teddy bear", "count": 1},
                                           {"class": "dog", "count": 1, "position": ["right of", 0]}]}
COUNTING = {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}]}
COLOR = {"tag": "color_attr", "include": [{"class": "bus", "count": 1, "color": "green"},
                                          {"class": "apple", "count": 1, "color": "black"}]}


def test_relations_by_box_centres():
    left, right = Detection("a", 1, (0, 0, 10, 10)), Detection("b", 1, (30, 2, 40, 12))
    assert relations(right, left) == {"right of"} and relations(left, right) == {"left of"}
    below = Detection("c", 1, (0, 40, 10, 50))
    assert relations(below, left) == {"below"}


def test_relations_diagonal_and_overlap():
    base = Detection("a", 1, (0, 0, 10, 10))
    assert relations(Detection("b", 1, (40, 40, 50, 50)), base) == {"right of", "below"}  # dx = dy = 0.71
    assert relations(Detection("b", 1, (1, 1, 11, 11)), base) == set()  # within the 0.1 x size margin


def check_requirements(metadata: dict, detections: list[Detection], colors: list[str]) -> list[bool]:
    return [ok for _, ok in labelled_checks(metadata, detections, colors)]


def test_check_requirements_count_exclude_position_color():
    clocks = [Detection("clock", 0.95, (i * 10, 0, i * 10 + 8, 8)) for i in range(3)]
    assert check_requirements(COUNTING, clocks[:2], ["white"] * 2) == [True, True]
    assert check_requirements(COUNTING, clocks, ["white"] * 3) == [True, False]  # three clocks: exclude fails
    assert check_requirements(COUNTING, clocks[:1], ["white"]) == [False, True]

    bear, dog = Detection("teddy bear", 0.9, (0, 0, 10, 10)), Detection("dog", 0.8, (30, 0, 40, 10))
    assert check_requirements(POSITION, [bear, dog], ["brown", "brown"]) == [True, True, True]
    dog_left = Detection("dog", 0.8, (-40, 0, -30, 10))
    assert check_requirements(POSITION, [bear, dog_left], ["brown", "brown"]) == [True, True, False]
    assert check_requirements(POSITION, [dog], ["brown"]) == [False, True, False]  # no bear to relate to

    bus, apple = Detection("bus", 0.9, (0, 0, 10, 10)), Detection("apple", 0.9, (20, 0, 30, 10))
    assert check_requirements(COLOR, [bus, apple], ["green", "red"]) == [True, True, True, False]


def test_checks_name_their_requirement():
    clocks = [Detection("clock", 0.95, (i * 10, 0, i * 10 + 8, 8)) for i in range(3)]
    assert labelled_checks(COUNTING, clocks, ["white"] * 3) == [("2 clock", True), ("fewer than 3 clock", False)]
    bear, dog_left = Detection("teddy bear", 0.9, (0, 0, 10, 10)), Detection("dog", 0.8, (-40, 0, -30, 10))
    assert [label for label, _ in labelled_checks(POSITION, [bear, dog_left], ["brown"] * 2)] == [
        "1 teddy bear", "1 dog", "dog right of teddy bear"]
    bus, apple = Detection("bus", 0.9, (0, 0, 10, 10)), Detection("apple", 0.9, (20, 0, 30, 10))
    assert [c for c in labelled_checks(COLOR, [bus, apple], ["green", "red"]) if not c[1]] == [
        ("black apple", False)]


def test_classify_color_on_box_centre():
    image = Image.new("RGB", (40, 20), (240, 240, 240))
    image.paste((30, 160, 40), (20, 0, 40, 20))
    assert classify_color(image, (20, 0, 40, 20)) == "green"
    assert classify_color(image, (0, 0, 20, 20)) == "white"


def test_nms_keeps_best_of_overlapping():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]], dtype=torch.float)
    assert nms(boxes, torch.tensor([0.5, 0.9, 0.7]), 0.5) == [1, 2]


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory):
    """A tiny random OWLv2 (32 px, 4x4 patches -> 16 boxes) with an offline byte-level tokenizer."""
    torch.manual_seed(0)
    tok = byte_level_tokenizer()
    config = Owlv2Config(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32,
    )
    path = tmp_path_factory.mktemp("owlv2")
    Owlv2ForObjectDetection(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _trajs():
    images = [Image.new("RGB", (32, 32), (200, 30, 30)), Image.new("RGB", (48, 24), (20, 20, 200)),
              Image.new("RGB", (16, 16), (240, 240, 240))]
    metas = [POSITION, COUNTING, COLOR]
    out = [Trajectory(f"g{i}", 0, "p", png=png_bytes(im), metadata=m) for i, (im, m) in enumerate(zip(images, metas))]
    out.insert(1, Trajectory("noimage", 0, "p", metadata=POSITION))
    out.append(Trajectory("nometa", 0, "p", png=png_bytes(images[0])))
    return out


def test_geneval_score_batching_and_none(owl_dir):
    reward = GenEvalScore(owl_dir, threshold=0.0, count_threshold=0.0, strict=False, batch_size=4)
    assert type(reward.model).__name__ == "Owlv2ForObjectDetection"
    batched = reward(_trajs())
    reward.batch_size = 1
    single = reward(_trajs())
    assert batched[1] is None and batched[4] is None
    assert batched == single
    assert all(0.0 <= v <= 1.0 for v in batched if v is not None)


def test_detections_use_only_the_images_classes(owl_dir):
    reward = GenEvalScore(owl_dir, threshold=0.0, count_threshold=0.0)
    images = [Image.new("RGB", (32, 32))] * 2
    found = reward.detect(images, [POSITION, COLOR])
    assert {d.label for d in found[0]} <= {"teddy bear", "dog"} and found[0]
    assert {d.label for d in found[1]} <= {"bus", "apple"} and found[1]
    assert all(len([d for d in f if d.label == c]) <= 16 for f in found for c in ("dog", "bus"))


def test_threshold_one_finds_nothing_and_strict_scores(owl_dir):
    reward = GenEvalScore(owl_dir, threshold=1.01, count_threshold=1.01, strict=True)
    values = reward(_trajs())
    # nothing detected: every include check fails -> 0.0; the exclude-only pass does not rescue strict scoring
    assert values == [0.0, None, 0.0, 0.0, None]


def test_explain_names_the_failed_checks_and_agrees_with_the_score(owl_dir):
    blind = GenEvalScore(owl_dir, threshold=1.01, count_threshold=1.01)
    findings = blind.explain(_trajs())
    assert findings[1] is None and findings[4] is None  # no image; no classes in the metadata
    assert findings[0] == ["expected 1 teddy bear", "expected 1 dog", "expected dog right of teddy bear"]
    seeing = GenEvalScore(owl_dir, threshold=0.0, count_threshold=0.0)
    for said, score in zip(seeing.explain(_trajs()), seeing(_trajs())):
        assert (said is None) == (score is None) and (said == []) == (score == 1.0)


def test_detector_dtype(owl_dir):
    reward = GenEvalScore(owl_dir, dtype="bfloat16", threshold=0.0, count_threshold=0.0, strict=False)
    assert reward.model.dtype == torch.bfloat16
    assert sum(v is not None for v in reward(_trajs())) == 3
