import json
from collections import Counter

import pytest

from benchmark_assets import ASSETS, real_geneval
from unigen.evals import load_benchmark


def test_real_geneval_has_553_prompts_in_six_categories():
    bench = load_benchmark({"class_path": "geneval", "init_args": {"path": real_geneval()}})
    assert len(bench.prompts) == 553
    assert Counter(r.category for r in bench.prompts) == {
        "single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100, "color_attr": 100}
    lines = real_geneval().read_text().splitlines()
    assert bench.source_lines == lines
    first = bench.prompts[0]
    assert (first.prompt, first.metadata["include"]) == ("a photo of a bench", [{"class": "bench", "count": 1}])
    assert bench.averaging == "categories"


def test_geneval_bad_line_names_the_line(tmp_path):
    good = (ASSETS / "geneval_mini.jsonl").read_text().splitlines()
    bad = tmp_path / "meta.jsonl"
    bad.write_text("\n".join([good[0], '{"tag": "colors", "prompt": "a red cup"}', good[1]]) + "\n")
    with pytest.raises(ValueError, match=r"meta.jsonl:2: .*'include'"):
        load_benchmark({"class_path": "geneval", "init_args": {"path": bad}})
    bad.write_text(good[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"meta.jsonl:2: bad GenEval line"):
        load_benchmark({"class_path": "geneval", "init_args": {"path": bad}})


def test_dpg_csv_and_prompt_folder_agree():
    from_csv = load_benchmark({"class_path": "dpg_bench", "init_args": {"path": ASSETS / "dpg_bench.csv"}})
    from_txt = load_benchmark({"class_path": "dpg_bench", "init_args": {"path": ASSETS / "dpg_prompts"}})
    assert [(r.id, r.prompt) for r in from_csv.prompts] == [(r.id, r.prompt) for r in from_txt.prompts]
    questions = from_csv.prompts[0].metadata["questions"]
    assert len(questions) == 4 and questions[3]["dependency"] == [1, 2]
    assert questions[2]["category_broad"] == "attribute"
    assert from_csv.averaging == "samples"


def test_dpg_bad_row_names_the_line(tmp_path):
    rows = (ASSETS / "dpg_bench.csv").read_text().splitlines()
    bad = tmp_path / "dpg_bench.csv"
    bad.write_text("\n".join(rows[:3] + [rows[3].replace(",3,1,", ",x,1,")]) + "\n")
    with pytest.raises(ValueError, match=r"dpg_bench.csv:4: bad proposition_id"):
        load_benchmark({"class_path": "dpg_bench", "init_args": {"path": bad}})
    bad.write_text("item_id,text\nA,b\n")
    with pytest.raises(ValueError, match=r"dpg_bench.csv:1: header lacks columns"):
        load_benchmark({"class_path": "dpg_bench", "init_args": {"path": bad}})


def test_t2i_compbench_categories_from_file_names():
    bench = load_benchmark({"class_path": "t2i_compbench", "init_args": {"path": ASSETS / "t2i_compbench"}})
    assert [(r.category, r.prompt) for r in bench.prompts] == [
        ("color", "a blue teapot and a yellow cup"), ("color", "a green scarf on a white chair"),
        ("spatial", "a lamp on the left of a sofa")]


def test_wise_json_and_bad_json(tmp_path):
    bench = load_benchmark({"class_path": "wise", "init_args": {"path": ASSETS / "wise"}})
    assert [r.id for r in bench.prompts] == ["wise-1", "wise-2"]
    assert bench.prompts[1].category == "Cultural knowledge" and bench.prompts[1].metadata["Subcategory"] == "Art"
    bad = tmp_path / "science.json"
    bad.write_text('[\n {"prompt_id": 1,\n  "Prompt": "x",, }\n]')
    with pytest.raises(ValueError, match=r"science.json:3: bad JSON"):
        load_benchmark({"class_path": "wise", "init_args": {"path": bad}})
    bad.write_text(json.dumps([{"prompt_id": 1, "Prompt": "x"}, {"prompt_id": 2}]))
    with pytest.raises(ValueError, match=r"science.json: item 1: needs"):
        load_benchmark({"class_path": "wise", "init_args": {"path": bad}})


def test_oneig_ids_are_unique_per_category(tmp_path):
    bench = load_benchmark({"class_path": "oneig", "init_args": {"path": ASSETS / "OneIG-Bench.csv"}})
    assert [r.id for r in bench.prompts] == ["Anime_Stylization-000", "General_Object-000", "General_Object-001"]
    assert bench.prompts[0].metadata["class"] == "ukiyo-e"
    bad = tmp_path / "OneIG-Bench.csv"
    bad.write_text("category,id,prompt_en\nGeneral_Object,000,a cup\nGeneral_Object,001,a,b\n")
    with pytest.raises(ValueError, match=r"OneIG-Bench.csv:3: wrong number of fields"):
        load_benchmark({"class_path": "oneig", "init_args": {"path": bad}})


def test_unknown_benchmark_and_subset():
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        load_benchmark({"class_path": "nope", "init_args": {"path": ASSETS}})
    bench = load_benchmark({"class_path": "geneval", "init_args": {"path": ASSETS / "geneval_mini.jsonl"}})
    sub = bench.subset(3)
    assert [r.category for r in sub.prompts] == ["single_object", "counting", "position"]
    assert sub.source_lines[1] == bench.source_lines[2]
