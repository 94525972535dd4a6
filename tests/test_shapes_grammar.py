"""ShapesWorld grammar: six GenEval categories, GenEval-shaped metadata, a disjoint held-out split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import shared_dir
from unigen.data.prompts import read_prompts, write_prompts
from unigen.worlds.shapes.grammar import benchmark_prompts, category_pool, content_key, sample_prompts, split_of
from unigen.worlds.shapes.vocab import CATEGORIES, COLORS, RELATIONS, SHAPES


def test_every_category_is_drawn_with_its_weight():
    records = sample_prompts(500, seed=0)
    counts = Counter(r.category for r in records)
    assert set(counts) == set(CATEGORIES) - {"single_object"}  # benchmark-only
    assert all(70 <= counts[c] <= 130 for c in counts), counts
    with pytest.raises(ValueError, match="single_object"):
        sample_prompts(5, 0, {"single_object": 1.0})
    rare = Counter(r.category for r in sample_prompts(2000, 0, {"counting": 0.1, "colors": 1.0}))
    assert set(rare) == {"counting", "colors"} and 120 <= rare["counting"] <= 260


def test_sampling_is_seeded():
    assert sample_prompts(50, 3) == sample_prompts(50, 3)
    assert sample_prompts(50, 3) != sample_prompts(50, 4)


def test_metadata_mirrors_geneval_lines():
    """Same keys per category as the real GenEval file; values from the world vocabulary."""
    real: dict[str, tuple] = {}
    for line in (shared_dir() / "benchmarks/geneval/evaluation_metadata.jsonl").read_text().splitlines():
        meta = json.loads(line)
        real.setdefault(meta["tag"], (sorted(meta), [sorted(o) for o in meta["include"]]))
    assert set(real) == set(CATEGORIES)
    for record in sample_prompts(300, seed=1) + benchmark_prompts():
        meta = record.metadata
        assert (sorted(meta), [sorted(o) for o in meta["include"]]) == real[record.category]
        assert meta["tag"] == record.category and meta["prompt"] == record.prompt
        for obj in meta["include"]:
            assert obj["class"] in SHAPES and obj.get("color", "red") in COLORS
        if record.category == "counting":
            (obj,) = meta["include"]
            assert 2 <= obj["count"] <= 4 and meta["exclude"] == [{"class": obj["class"], "count": obj["count"] + 1}]
        if record.category == "position":
            assert meta["include"][1]["position"][0] in RELATIONS and meta["include"][1]["position"][1] == 0


def test_prompt_text_examples():
    prompts = {m["prompt"] for c in CATEGORIES for s in ("train", "heldout") for m in category_pool(c, s)}
    for example in ("a photo of a circle", "a photo of three crosses", "a photo of a red square",
                    "a photo of a triangle left of a square", "a photo of a blue circle and a white cross"):
        assert example in prompts


def test_heldout_split_is_disjoint_and_covers_every_category():
    bench = benchmark_prompts()
    assert {r.category for r in bench} == set(CATEGORIES)
    assert all(split_of(r.metadata) == "heldout" for r in bench)
    train = sample_prompts(5000, seed=7)
    assert not {r.prompt for r in train} & {r.prompt for r in bench}
    assert not {content_key(r.metadata) for r in train} & {content_key(r.metadata) for r in bench}
    for cat in CATEGORIES:
        train_pool, held = category_pool(cat, "train"), category_pool(cat, "heldout")
        assert len(held) >= 6 and (len(train_pool) > len(held) or cat == "single_object")



def test_pretrain_split_is_train_plus_single_object_only():
    """The base's pretraining set: every train content, single_object's six, no other held-out one."""
    bench = {content_key(r.metadata) for r in benchmark_prompts()}
    for cat in CATEGORIES:
        pool = {content_key(m) for m in category_pool(cat, "pretrain")}
        train = {content_key(m) for m in category_pool(cat, "train")}
        if cat == "single_object":
            assert pool == {content_key(m) for m in category_pool(cat, "heldout")} and len(pool) == 6
        else:
            assert pool == train and not pool & bench


def test_benchmark_is_balanced_over_shapes_colours_counts_relations():
    bench = benchmark_prompts()
    for cat in CATEGORIES:
        metas = [r.metadata for r in bench if r.category == cat]
        assert len(metas) == 6
        shapes = Counter(o["class"] for m in metas for o in m["include"])
        assert set(shapes) == set(SHAPES) and len(set(shapes.values())) == 1, (cat, shapes)
        colours = Counter(o["color"] for m in metas for o in m["include"] if "color" in o)
        assert not colours or (set(colours) == set(COLORS) and len(set(colours.values())) == 1), (cat, colours)
    counts = Counter(r.metadata["include"][0]["count"] for r in bench if r.category == "counting")
    assert counts == {2: 2, 3: 2, 4: 2}
    relations = Counter(content_key(r.metadata).split(" ", 1)[1].rsplit(" ", 1)[0] for r in bench
                        if r.category == "position")
    assert relations == {"left of": 3, "above": 3}


def test_equivalent_phrasings_share_a_side():
    position = category_pool("position", "train") + category_pool("position", "heldout")
    by_key: dict[str, set[str]] = {}
    for meta in position:
        by_key.setdefault(content_key(meta), set()).add(split_of(meta))
    assert all(len(sides) == 1 for sides in by_key.values())
    assert max(Counter(content_key(m) for m in position).values()) == 2  # "A left of B" == "B right of A"


def test_benchmark_subset_and_prompt_file_round_trip(tmp_path):
    subset = benchmark_prompts(per_category=2, seed=0)
    assert Counter(r.category for r in subset)["color_attr"] == 2
    assert len({r.id for r in subset}) == len(subset)
    write_prompts(tmp_path / "bench.jsonl", subset)
    assert read_prompts(tmp_path / "bench.jsonl") == subset


def test_unknown_category_weight_is_an_error():
    with pytest.raises(ValueError, match="unknown categories"):
        sample_prompts(3, 0, {"colour": 1.0})
