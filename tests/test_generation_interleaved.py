"""The sampler's interleaved mode on a real janus-micro model whose text head follows a per-row
script (turn by turn), so rows that redraw, stop after one image and never draw share one batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_generation_graphs import same_results
from unigen.data.batch import collate
from unigen.data.sequence import build_example
from unigen.data.trajectory import Trajectory
from unigen.generation import SamplingConfig, sample

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["a red cube", "two circles", "x", "a blue square left of a circle"]


class TurnScript:
    """Row r emits ``script[r][turn][i]`` as its i-th text token of turn ``turn`` (turn = EOIs fed
    so far); past its script it writes a plain word and never ends. Each row's progress is read
    from the text ids the sampler feeds back (``embed_text``), so the script follows the rows'
    own turns whatever the other rows do."""

    def __init__(self, model, script: list[list[list[int]]], word: int):
        self.spec, self.script, self.word = model.spec, script, word
        self.turn = [0] * len(script)
        self.pos = [0] * len(script)
        self.embed_text = model.embed_text
        model.embed_text = self.fed
        self.handle = model.hf.lm_head.register_forward_hook(self.head)
        self.model = model

    def fed(self, ids):
        if ids.ndim == 1:  # one decoding step (the prompt prefill is 2-D)
            for row, token in enumerate(ids[: len(self.script)].tolist()):
                if token == self.spec.eoi_id:
                    self.turn[row], self.pos[row] = self.turn[row] + 1, 0
                elif token not in (self.spec.pad_id, self.spec.boi_id):
                    self.pos[row] += 1
        return self.embed_text(ids)

    def head(self, module, inputs, out):
        out = out.clone()
        out[:, [self.spec.boi_id, self.spec.eos_id]] = float("-inf")
        for row in range(out.shape[0]):
            turns = self.script[row]
            turn = turns[self.turn[row]] if self.turn[row] < len(turns) else []
            out[row, turn[self.pos[row]] if self.pos[row] < len(turn) else self.word] = 1e4
        return out

    def remove(self):
        self.handle.remove()
        del self.model.embed_text


def scripts(spec):
    a, b, c = spec.encode_text("red")[0], spec.encode_text("cube")[0], spec.encode_text("left")[0]
    boi, eos = spec.boi_id, spec.eos_id
    return [
        [[a, b, boi], [c, boi]],  # draws, reflects, redraws (then max_images ends it)
        [[boi], [a, eos]],        # draws, reflects, stops with EOS
        [[c, eos]],               # never draws
        [[boi], []],              # draws, then reflects until the text limit
    ], (a, b, c)


def run(model, config, prompts, script, seeds, decoder="eager"):
    hook = TurnScript(model, script, script[0][0][0])
    try:
        return sample(model, prompts, config, seeds=seeds, decoder=decoder)
    finally:
        hook.remove()


@pytest.mark.parametrize("cfg", [3.0, 1.0])
def test_rows_redraw_stop_or_never_draw_in_one_batch(micro_model, cfg):
    spec = micro_model.spec
    script, (a, b, c) = scripts(spec)
    config = SamplingConfig(mode="interleaved", max_images=2, max_reasoning_tokens=5, cfg=cfg)
    results = run(micro_model, config, PROMPTS, script, [1, 2, 3, 4])
    assert [r.stop for r in results] == ["image", "eos", "eos", "limit"]
    assert [r.reasoning_ids for r in results] == [[a, b], [], [c], []]
    assert [[t.text for t in r.turns] for r in results] == [
        [spec.decode_text([c])], [spec.decode_text([a])], [], [spec.decode_text([a] * 5)]]
    assert [[t.has_image for t in r.turns] for r in results] == [[True], [False], [], [False]]
    assert [r.has_image for r in results] == [True, True, False, True]
    redraw = results[0]
    for image in (redraw.image_tokens, redraw.turns[0].image_tokens):
        assert image.dtype == np.int64 and image.shape == (spec.image.num_tokens,)
        assert 0 <= image.min() and image.max() < spec.image.codebook_size
    assert not np.array_equal(redraw.image_tokens, redraw.turns[0].image_tokens)
    static = run(micro_model, config, PROMPTS, script, [1, 2, 3, 4], decoder="static")
    assert same_results(results, static)
    assert all([(t.text, t.image_tokens.tolist()) for t in x.turns] == [(t.text, t.image_tokens.tolist()) for t in y.turns]
               for x, y in zip(results, static))
    alone = run(micro_model, config, PROMPTS[:1], script[:1], [1])[0]  # a row's turns do not depend on its batch
    assert np.array_equal(alone.turns[0].image_tokens, redraw.turns[0].image_tokens)


def test_max_images_one_is_unified(micro_model):
    spec = micro_model.spec
    script, _ = scripts(spec)
    one = SamplingConfig(mode="interleaved", max_images=1, max_reasoning_tokens=5, cfg=3.0)
    unified = SamplingConfig(mode="unified", max_reasoning_tokens=5, cfg=3.0)
    a = run(micro_model, one, PROMPTS, script, [1, 2, 3, 4])
    b = run(micro_model, unified, PROMPTS, script, [1, 2, 3, 4])
    assert same_results(a, b) and all(not r.turns for r in a)
    assert "max_images" not in unified.as_dict() and one.as_dict()["max_images"] == 1
    with pytest.raises(ValueError, match="max_images"):
        SamplingConfig(mode="interleaved", max_images=0)


def test_unconditional_rows_of_later_turns_are_what_condition_dropout_trains(micro_model):
    """After the first image the unconditional row sees pad for EOI and the reflection, BOI at the
    redraw and the shared image ids: the training sequence of the dropped two-image trajectory."""
    spec, model = micro_model.spec, micro_model
    script, _ = scripts(spec)
    fed = []
    backbone = model.backbone
    model.backbone = lambda embeds, *args, **kwargs: (fed.append(embeds), backbone(embeds, *args, **kwargs))[1]
    try:
        result = run(model, SamplingConfig(mode="interleaved", max_images=2, max_reasoning_tokens=5, cfg=3.0),
                     PROMPTS[:1], script[:1], [5])[0]
    finally:
        del model.backbone
    assert len(result.turns) == 1 and result.turns[0].has_image
    embeds = torch.cat(fed, dim=1)
    traj = Trajectory("p", 0, PROMPTS[0], result.reasoning, result.image_tokens, turns=result.turns)
    for row, drop in ((0, False), (1, True)):
        batch = collate([build_example(traj, spec, "unified", drop_condition=drop)], spec.pad_id)
        assert embeds.shape[1] >= batch.input_ids.shape[1] - 2  # everything but the final EOI / EOS was fed
        length = min(embeds.shape[1], batch.input_ids.shape[1])
        with torch.no_grad():
            trained = model.embed_mixed(batch.input_ids, batch.image_mask)[0, :length]
        torch.testing.assert_close(embeds[row, :length], trained)


def test_rollouts_keep_every_image_with_its_png(micro_model, tmp_path):
    from unigen.data.prompts import PromptRecord
    from unigen.data.reader import read_shard
    from unigen.data.shards import write_shard
    from unigen.generation import generate_trajectories

    spec = micro_model.spec
    script, _ = scripts(spec)
    config = SamplingConfig(mode="interleaved", max_images=2, max_reasoning_tokens=5, cfg=3.0)
    hook = TurnScript(micro_model, script[:3], script[0][0][0])
    try:
        trajs = generate_trajectories(micro_model, [PromptRecord(f"p{i}", p) for i, p in enumerate(PROMPTS[:3])], 1,
                                      config, seed=0, model_id="m", batch_size=3)
    finally:
        hook.remove()
    back = list(read_shard(write_shard(tmp_path, "traj", 0, trajs)))
    assert [t.num_images for t in back] == [2, 1, 0]
    assert [len(t.turns) for t in back] == [1, 1, 0]
    redraw = back[0]
    assert redraw.png is not None and redraw.turns[0].png is not None and redraw.png != redraw.turns[0].png
    assert back[1].turns[0].png is None and back[0].mode == "interleaved"
    assert back[0].generation["max_images"] == 2 and back[0].generation["stop"] == "image"


def test_run_generate_interleaved(tmp_path, monkeypatch):
    """``run.py generate`` in interleaved mode through the command line, the janus-micro model's text
    head scripted: row 0 redraws, the others stop after one image; every image is written with its PNG."""
    import unigen.pipeline.generate as stage
    from unigen.cli import main
    from unigen.checkpoints import load_unified
    from unigen.data.prompts import PromptRecord, write_prompts
    from unigen.data.reader import read_shard

    hooks = []

    def scripted(*args, **kwargs):
        model = load_unified(*args, **kwargs)
        script, _ = scripts(model.spec)
        hooks.append(TurnScript(model, [script[0]] + [script[1]] * 5, script[0][0][0]))
        return model

    monkeypatch.setattr(stage, "load_unified", scripted)
    write_prompts(tmp_path / "p.jsonl", [PromptRecord(f"p{i}", f"prompt {i}") for i in range(3)])
    try:
        main(["generate", "--prompts", f"[{tmp_path / 'p.jsonl'}]", "--out_dir", str(tmp_path / "out"), "--model",
              "janus-micro", "--samples_per_prompt", "2", "--sampling.mode", "interleaved", "--sampling.max_images",
              "3", "--sampling.max_reasoning_tokens", "3", "--sampling.greedy", "true"])
    finally:
        for hook in hooks:
            hook.remove()
    trajs = list(read_shard(tmp_path / "out" / "traj-000000.tar"))
    assert len(trajs) == 6 and all(t.mode == "interleaved" and t.generation["max_images"] == 3 for t in trajs)
    assert sorted(t.num_images for t in trajs) == [1, 1, 1, 1, 1, 2]
    for t in trajs:
        assert all(turn.png is not None for turn in t.all_turns() if turn.has_image)


class Brightness:
    """An image reward that tells images apart: mean pixel value of the PNG in [0, 1]."""

    modality = "image"

    def __call__(self, trajectories):
        from unigen.worlds.shapes.render import from_png

        return [None if t.png is None else float(from_png(t.png).mean() / 255) for t in trajectories]


def test_evaluation_scores_the_final_image_and_keeps_the_earlier_ones(micro_model, tmp_path):
    from unigen.data.prompts import PromptRecord
    from unigen.evals.runner import draw_and_score, sample_rows
    from unigen.evals.summary import summarize

    spec = micro_model.spec
    script, _ = scripts(spec)
    records = [PromptRecord(f"p{i}", p, "cat" + str(i % 2)) for i, p in enumerate(PROMPTS[:3])]
    config = SamplingConfig(mode="interleaved", max_images=2, max_reasoning_tokens=5, cfg=3.0)
    hook = TurnScript(micro_model, script[:3], script[0][0][0])
    try:
        groups = draw_and_score(micro_model, records, 1, config, Brightness(), 0, "m")
    finally:
        hook.remove()
    redraw, stopped, never = (g[0] for g in groups)
    assert redraw.turns.earlier and redraw.turns.earlier[0] != redraw.png
    assert redraw.score == Brightness()([Trajectory("p", 0, "", png=redraw.png)])[0]
    assert redraw.turns.first_score == Brightness()([Trajectory("p", 0, "", png=redraw.turns.earlier[0])])[0]
    assert redraw.turns.first_score != redraw.score
    assert not stopped.turns.earlier and stopped.turns.first_score == stopped.score and stopped.png is not None
    assert never.failure == "no_image" and never.score == 0.0  # a failure scores 0
    assert [s.turns.images for s in (redraw, stopped, never)] == [2, 1, 0]
    summary = summarize(sample_rows(records, groups), "categories")
    assert summary["scored_image"] == "final" and summary["redraw_share"] == pytest.approx(1 / 3)
    cat0 = summary["categories"]["cat0"]  # the redraw and the never-drawn row
    assert cat0["first_score"] == pytest.approx(redraw.turns.first_score / 2)
    assert cat0["score"] == pytest.approx(redraw.score / 2) and cat0["redraw_share"] == 0.5


def test_a_row_that_ends_right_after_its_image_has_no_later_turn(micro_model):
    spec = micro_model.spec
    config = SamplingConfig(mode="interleaved", max_images=3, max_reasoning_tokens=5, cfg=3.0)
    script = [[[spec.boi_id], [spec.eos_id]], [[spec.eos_id]]]  # EOI then EOS at once; EOS before any text
    one, none = run(micro_model, config, PROMPTS[:2], script, [1, 2])
    assert one.has_image and one.turns == [] and one.stop == "eos"  # trains as a single-image (format 1) sample
    assert not none.has_image and none.reasoning_ids == [] and none.turns == []
