"""`run.py score`: YAML-only plugin rewards, outputs beside untouched inputs, resume, stats, NaN rejection."""

import json
import textwrap

import numpy as np
import pytest

from unigen.cli import main
from unigen.data.reader import read_shard
from unigen.data.shards import write_shard
from unigen.data.trajectory import Trajectory
from unigen.files import png_bytes

PLUGIN = '''
from PIL import Image
import io

class ReasoningLength:
    """Text reward: reasoning length / 10; None without reasoning; NaN for 'bad' prompts."""
    modality = "text"
    calls = []

    def __init__(self, scale: float = 10.0):
        self.scale = scale

    def __call__(self, trajectories):
        ReasoningLength.calls.append(len(trajectories))
        return [float("nan") if t.prompt == "bad" else (len(t.reasoning) / self.scale if t.reasoning else None)
                for t in trajectories]

class Redness:
    """Image reward: mean red channel in [0, 1]; None without an image."""
    modality = "both"

    def __call__(self, trajectories):
        out = []
        for t in trajectories:
            if t.png is None:
                out.append(None)
                continue
            image = Image.open(io.BytesIO(t.png)).convert("RGB")
            red = [p[0] for p in image.getdata()]
            out.append(sum(red) / len(red) / 255)
        return out
'''


def _png(red: int) -> bytes:
    from PIL import Image
    return png_bytes(Image.new("RGB", (4, 4), (red, 0, 0)))


def _inputs(tmp_path, bad=False):
    shards = tmp_path / "in"
    a = [Trajectory("p1", 0, "one", "abcde", png=_png(255)), Trajectory("p1", 1, "one", "", png=_png(0))]
    b = [Trajectory("p2", 0, "bad" if bad else "two", "0123456789", np.arange(3)),
         Trajectory("p2", 1, "two", "ab", png=_png(51), rewards={"image": {"old": 0.5}})]
    write_shard(shards, "traj", 0, a)
    write_shard(shards, "traj", 1, b)
    return shards


def _config(tmp_path, shards, batch_size=3):
    module = tmp_path / "plugins"
    module.mkdir(exist_ok=True)
    (module / "my_rewards.py").write_text(PLUGIN)
    config = tmp_path / "score.yaml"
    config.write_text(textwrap.dedent(f"""\
        input: {shards}
        output: {tmp_path / "out"}
        batch_size: {batch_size}
        rewards:
          length:
            class_path: my_rewards.ReasoningLength
            init_args: {{scale: 10.0}}
          red:
            class_path: my_rewards.Redness
        combine:
          image/total: {{image/red: 3.0, image/old: 1.0}}
        """))
    return config


def test_score_with_yaml_plugin(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    shards = _inputs(tmp_path)
    before = {p.name: p.read_bytes() for p in shards.iterdir()}
    main(["score", "--config", str(_config(tmp_path, shards))])

    assert {p.name: p.read_bytes() for p in shards.iterdir()} == before  # inputs untouched
    out = tmp_path / "out"
    rows = {t.key: t for s in sorted(out.glob("scored-*.tar")) for t in read_shard(s)}
    assert sorted(p.name for p in out.glob("scored-*.tar")) == ["scored-000000.tar", "scored-000001.tar"]
    assert rows["p1_0"].rewards == {"text": {"length": 0.5, "red": 1.0}, "image": {"red": 1.0, "total": 1.0}}
    assert rows["p1_1"].rewards == {"text": {"red": 0.0}, "image": {"red": 0.0, "total": 0.0}}  # no reasoning: None
    assert rows["p2_0"].rewards == {"text": {"length": 1.0}}  # no png: image rewards None, combine None
    assert rows["p2_1"].rewards["image"] == {"old": 0.5, "red": pytest.approx(0.2), "total": pytest.approx(0.275)}
    stats = json.loads((out / "scored-rewards.json").read_text())
    assert stats["text/length"] == {"count": 3, "missing": 1, "mean": pytest.approx(1.7 / 3), "std": pytest.approx(
        np.std([0.5, 1.0, 0.2])), "min": 0.2, "max": 1.0}
    assert stats["image/red"]["count"] == 3 and stats["image/red"]["missing"] == 1
    assert "text/length" in capsys.readouterr().out


def test_score_resumes_without_rescoring(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    shards = _inputs(tmp_path)
    config = _config(tmp_path, shards, batch_size=1)
    main(["score", "--config", str(config)])
    (tmp_path / "out" / "scored-000001.tar").unlink()
    index = json.loads((tmp_path / "out" / "scored-index.json").read_text())
    del index["shards"]["scored-000001.tar"]
    (tmp_path / "out" / "scored-index.json").write_text(json.dumps(index))
    import my_rewards
    my_rewards.ReasoningLength.calls.clear()
    main(["score", "--config", str(config)])
    assert my_rewards.ReasoningLength.calls == [1, 1]  # only the two trajectories of the missing shard
    assert len(list(read_shard(tmp_path / "out" / "scored-000001.tar"))) == 2


def test_nan_reward_rejected_with_key(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    shards = _inputs(tmp_path, bad=True)
    with pytest.raises(ValueError, match=r"reward 'length' returned nan for trajectory 'p2_0'"):
        main(["score", "--config", str(_config(tmp_path, shards))])
    assert not (tmp_path / "out" / "scored-000001.tar").exists()


def test_decoder_fills_png_from_image_tokens(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    write_shard(tmp_path / "in", "traj", 0, [Trajectory("p", 0, "x", "", np.arange(16) % 64)])
    config = _config(tmp_path, tmp_path / "in")
    main(["score", "--config", str(config), "--decoder", "janus-micro", "--keep_png", "true"])
    (traj,) = read_shard(tmp_path / "out" / "scored-000000.tar")
    assert 0.0 <= traj.rewards["image"]["red"] <= 1.0
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(traj.png)).size == (16, 16)
