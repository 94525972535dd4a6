import json
from collections import Counter

import pytest

from benchmark_assets import ASSETS, load, real_geneval


def test_real_geneval_has_553_prompts_in_six_categories():
    bench = load("geneval", real_geneval())
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
        load("geneval", bad)
    bad.write_text(good[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"meta.jsonl:2: bad GenEval line"):
        load("geneval", bad)


def test_dpg_csv_and_prompt_folder_agree_byte_exact():
    from_csv = load("dpg_bench", ASSETS / "dpg_bench.csv")
    from_txt = load("dpg_bench", ASSETS / "dpg_prompts")
    assert [(r.id, r.prompt) for r in from_csv.prompts] == [(r.id, r.prompt) for r in from_txt.prompts]
    assert [r.id for r in from_txt.prompts] == ["diffusion01", "toy001", "toy002"]    # item-id order
    for record in from_txt.prompts:                       # the whole file, leading space included
        assert record.prompt.encode() == (ASSETS / "dpg_prompts" / f"{record.id}.txt").read_bytes()
    assert from_txt.prompts[0].prompt.startswith(" an elaborate")
    questions = from_csv.prompts[1].metadata["questions"]
    assert len(questions) == 4 and questions[3]["dependency"] == [1, 2]
    assert questions[2]["category_broad"] == "attribute"
    assert from_csv.averaging == "samples"


def test_dpg_bad_row_names_the_line(tmp_path):
    rows = (ASSETS / "dpg_bench.csv").read_text().splitlines()
    bad = tmp_path / "dpg_bench.csv"
    bad.write_text("\n".join(rows[:3] + [rows[3].replace(",3,1,", ",x,1,")]) + "\n")
    with pytest.raises(ValueError, match=r"dpg_bench.csv:4: bad proposition_id"):
        load("dpg_bench", bad)
    bad.write_text("item_id,text\nA,b\n")
    with pytest.raises(ValueError, match=r"dpg_bench.csv:1: header lacks columns"):
        load("dpg_bench", bad)


def test_t2i_compbench_lines_as_the_official_script_splits_them(tmp_path):
    bench = load("t2i_compbench", ASSETS / "t2i_compbench")
    # CRLF and LF files, no final newline in one; color_val_seen.txt (a subset) is not a category
    assert [(r.category, r.prompt, r.metadata["line"]) for r in bench.prompts] == [
        ("color", "a blue teapot and a yellow cup", 0), ("color", "a green scarf on a white chair", 1),
        ("spatial", "a lamp on the left of a sofa", 0)]
    (tmp_path / "shape_val.txt").write_text("a round clock\n\na square table\n")
    with pytest.raises(ValueError, match=r"shape_val.txt:2: empty prompt line"):
        load("t2i_compbench", tmp_path)


def test_wise_folder_skips_merge_json_and_equals_it(tmp_path):
    folder = load("wise", ASSETS / "wise")
    merged = load("wise", ASSETS / "wise" / "merge.json")
    assert [r.id for r in folder.prompts] == ["wise-1", "wise-2", "wise-641"]    # by prompt_id
    assert [(r.id, r.prompt, r.category) for r in folder.prompts] == [
        (r.id, r.prompt, r.category) for r in merged.prompts]
    assert folder.prompts[1].category == "Cultural knowledge" and folder.prompts[1].metadata["Subcategory"] == "Art"
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps([{"prompt_id": 7, "Prompt": "x"}]))
    with pytest.raises(ValueError, match=r"prompt_id 7 is in both .*a.json' and .*b.json'"):
        load("wise", tmp_path)
    bad = tmp_path / "science.json"
    bad.write_text('[\n {"prompt_id": 1,\n  "Prompt": "x",, }\n]')
    with pytest.raises(ValueError, match=r"science.json:3: bad JSON"):
        load("wise", bad)
    bad.write_text(json.dumps([{"prompt_id": 1, "Prompt": "x"}, {"prompt_id": 2}]))
    with pytest.raises(ValueError, match=r"science.json: item 1: needs"):
        load("wise", bad)


def test_oneig_csv_json_and_chinese(tmp_path):
    bench = load("oneig", ASSETS)
    assert [r.id for r in bench.prompts] == ["Anime_Stylization-000", "General_Object-000", "General_Object-001",
                                             "Text_Rendering-000"]
    assert bench.prompts[3].prompt == 'A shop sign that reads "OPEN LATE." '          # trailing space kept
    assert bench.prompts[0].metadata["class"] == "ukiyo-e" and bench.prompts[0].metadata["id"] == "000"
    from_json = load("oneig", ASSETS / "OneIG-Bench.json")
    assert [(r.id, r.prompt) for r in from_json.prompts] == [(r.id, r.prompt) for r in bench.prompts]
    zh = load("oneig_zh", ASSETS)
    assert [(r.category, r.prompt) for r in zh.prompts] == [
        ("General_Object", "一摞三本书放在一杯水旁边"), ("Multilingualism", "春节时贴在门上的红色对联")]
    assert zh.name == "oneig_zh" and zh.prompts[0].metadata["language"] == "cn"
    by_file = load("oneig", ASSETS / "OneIG-Bench-ZH.csv")          # the prompt column picks the language
    assert [r.prompt for r in by_file.prompts] == [r.prompt for r in zh.prompts]
    bad = tmp_path / "OneIG-Bench.csv"
    bad.write_text("category,id,prompt_en\nGeneral_Object,000,a cup\nGeneral_Object,001,a,b\n")
    with pytest.raises(ValueError, match=r"OneIG-Bench.csv:3: wrong number of fields"):
        load("oneig", bad)
    bad.write_text("category,id,prompt\nGeneral_Object,000,a cup\n")
    with pytest.raises(ValueError, match=r"OneIG-Bench.csv:2: needs exactly one of \('prompt_en', 'prompt_cn'\)"):
        load("oneig", bad)


def test_unknown_benchmark_and_subset():
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        load("nope", ASSETS)
    bench = load("geneval", ASSETS / "geneval_mini.jsonl")
    sub = bench.subset(3)
    assert [r.category for r in sub.prompts] == ["single_object", "counting", "position"]
    assert sub.source_lines[1] == bench.source_lines[2]
