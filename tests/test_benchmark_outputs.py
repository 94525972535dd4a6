import io
import json

import pytest
from PIL import Image

from unigen.evals.summary import image_grid, markdown_table, summarize, write_summary


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def _rows(spec):
    return [{"category": c, "score": s, "switched": sw, "reasoning_tokens": t,
             "failure": "no_image" if not sw and s == 0.0 else None} for c, s, sw, t in spec]


def test_summary_geneval_averaging_is_mean_of_category_means():
    rows = _rows([("a", 1.0, True, 10), ("a", 0.0, True, 20), ("a", 1.0, False, 30), ("a", 1.0, True, 40),
                  ("b", 0.0, True, 0), ("b", None, True, 0)])
    s = summarize(rows, "categories", "geneval")
    assert s["categories"]["a"] == {"score": 0.75, "scored": 4, "samples": 4, "failed": 0}
    assert s["categories"]["b"] == {"score": 0.0, "scored": 1, "samples": 2, "failed": 0}
    assert s["overall"] == pytest.approx(0.375)          # (0.75 + 0.0) / 2, not 3/5
    assert s["switch_rate"] == pytest.approx(5 / 6)
    assert s["mean_reasoning_tokens"] == pytest.approx(100 / 6)
    assert summarize(rows, "samples")["overall"] == pytest.approx(3 / 5)
    table = markdown_table(s)
    assert "| a | 4 | 0 | 4 | 0.7500 |" in table and "**0.3750**" in table
    failed = summarize(_rows([("a", 1.0, True, 5), ("a", 0.0, False, 64), ("b", 0.0, False, 64)]), "samples")
    assert (failed["failed"], failed["failures"], failed["categories"]["b"]["failed"]) == (2, {"no_image": 2}, 1)
    assert failed["overall"] == pytest.approx(1 / 3)
    assert "| **overall (samples)** | 3 | 2 | 3 |" in markdown_table(failed)


def test_summary_without_scores_and_bad_rule():
    s = summarize(_rows([("a", None, True, 1)]), "categories")
    assert s["overall"] is None and s["categories"]["a"]["score"] is None
    with pytest.raises(ValueError, match="averaging rule 'median'"):
        summarize([], "median")


def test_write_summary_and_grid(tmp_path):
    imgs = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
    grid = image_grid(imgs, ["a red one", "a green one", "a blue one"], cols=2, tile=32)
    assert grid.size == (64, 2 * (32 + 40))
    assert grid.getpixel((5, 5)) == (255, 0, 0) and grid.getpixel((37, 5)) == (0, 128, 0)
    s = summarize(_rows([("a", 1.0, True, 1)]), "categories", "x")
    write_summary(tmp_path, s, grid)
    assert json.loads((tmp_path / "summary.json").read_text())["overall"] == 1.0
    assert (tmp_path / "summary.md").read_text().startswith("| category |")
    assert Image.open(tmp_path / "grid.png").size == grid.size


def test_color_match_scores_decoded_pixels():
    from unigen.rewards import REWARDS
    from unigen.rewards.color_match import ColorMatch
    from unigen.data.trajectory import Trajectory

    blue = {"include": [{"class": "cup", "count": 1, "color": "blue"}]}
    two = {"include": [{"class": "cup", "count": 1, "color": "red"}, {"class": "car", "count": 1, "color": "white"}]}
    img = Image.new("RGB", (16, 16), (10, 20, 230))
    img.paste((250, 250, 245), (0, 0, 16, 5))              # 80 near-white pixels, 176 near-blue
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    trajs = [Trajectory("p", 0, "a blue cup", metadata=blue, png=buf.getvalue()),
             Trajectory("p", 1, "a red cup and a white car", metadata=two, png=buf.getvalue()),
             Trajectory("q", 0, "a blue cup", metadata=blue, png=None),
             Trajectory("r", 0, "a cup", metadata={"include": [{"class": "cup", "count": 1}]}, png=_png("red"))]
    assert ColorMatch()(trajs) == [1.0, 0.0, 0.0, None]
    assert isinstance(REWARDS.build("color_match"), ColorMatch)
    assert isinstance(REWARDS.build("unigen.rewards.color_match.ColorMatch"), ColorMatch)
    assert isinstance(REWARDS.build({"class_path": "color_match"}), ColorMatch)
    with pytest.raises(ValueError, match="unknown reward 'vqa'; short names: .*color_match"):
        REWARDS.build("vqa")
    with pytest.raises(ValueError, match="reward 'nowhere.Reward': cannot import 'nowhere.Reward'"):
        REWARDS.build({"class_path": "nowhere.Reward", "init_args": {}})


def test_failures_are_scored_as_the_placeholder_and_never_earn_credit():
    from unigen.evals.runner import score_samples
    from unigen.rewards.color_match import ColorMatch
    from unigen.data.trajectory import Trajectory

    seen = []

    def lenient(trajs):                       # a judge that likes every image it is shown
        seen.extend(t.png is not None for t in trajs)
        return [1.0] * len(trajs)

    blue = {"include": [{"class": "cup", "count": 1, "color": "blue"}]}
    trajs = [Trajectory("p", 0, "a blue cup", metadata=blue, png=_png((0, 0, 255))),
             Trajectory("p", 1, "a blue cup", metadata=blue, png=None),
             Trajectory("q", 0, "a cup", metadata={"include": [{"class": "cup", "count": 1}]}, png=None)]
    assert score_samples(lenient, trajs, 16) == [1.0, 0.0, 0.0] and seen == [True, True, True]
    assert score_samples(ColorMatch(), trajs, 16) == [1.0, 0.0, None]     # None: no color asked, not a score
    assert score_samples(None, trajs, 16) == [None, None, None]
