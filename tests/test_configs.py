"""Every YAML under configs/ parses with the parser that reads it.

- ``configs/models/*.yaml``: architecture configs, resolved by the model loader;
- ``configs/<command>/*.yaml`` for a pipeline command: that command's ``--print_config``;
- anything else is a Lightning config for ``run.py fit`` (``--print_config``); a partial one (no
  ``model.class_path``, e.g. an ablation overlay) is parsed stacked on ``configs/tiny.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from unigen.cli import COMMANDS, main
from unigen.models.loading import resolve_config

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_parses(path: Path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    kind = path.relative_to(REPO / "configs").parts[0]
    if kind == "models":
        config, tokenizer, pretrained = resolve_config(str(path))
        assert not pretrained and config.model_type == yaml.safe_load(path.read_text())["model_type"]
        assert tokenizer is not None
        return
    raw = yaml.safe_load(path.read_text()) or {}
    if kind in COMMANDS.short_names:
        argv = [kind, "--config", str(path), "--print_config"]
    else:
        stacked = isinstance(raw.get("model"), dict) and "class_path" in raw["model"]
        base = [] if stacked else ["--config", str(REPO / "configs" / "tiny.yaml")]
        argv = ["fit", *base, "--config", str(path), "--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None), capsys.readouterr().err[-2000:]
    assert yaml.safe_load(capsys.readouterr().out)


def _fit_configs() -> tuple[list[Path], list[Path]]:
    """(bases, overlays) among the ``run.py fit`` configs: an overlay has no ``model.class_path``."""
    bases, overlays = [], []
    for path in CONFIGS:
        kind = path.relative_to(REPO / "configs").parts[0]
        if kind == "models" or kind in COMMANDS.short_names:
            continue
        model = (yaml.safe_load(path.read_text()) or {}).get("model")
        (bases if isinstance(model, dict) and "class_path" in model else overlays).append(path)
    return bases, overlays


BASES, OVERLAYS = _fit_configs()


def _callbacks(path: Path) -> list[str]:
    trainer = (yaml.safe_load(path.read_text()) or {}).get("trainer", {})
    return [c["class_path"] for c in trainer.get("callbacks", trainer.get("callbacks+", []))]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_each_overlay_stacks_on_each_base_config(overlay: Path, tmp_path, monkeypatch, capsys):
    assert len(BASES) >= 4 and len(OVERLAYS) >= 6
    monkeypatch.chdir(tmp_path)
    spec = yaml.safe_load(overlay.read_text())
    assert "callbacks" not in spec.get("trainer", {})  # appends (callbacks+), never replaces
    assert "../shared" not in overlay.read_text()  # data paths come from the user
    for base in BASES:
        with pytest.raises(SystemExit):
            main(["fit", "--config", str(base), "--config", str(overlay), "--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        callbacks = printed["trainer"]["callbacks"] or []
        assert [c["class_path"] for c in callbacks] == _callbacks(base) + _callbacks(overlay), base
        for key, value in spec.get("data", {}).get("init_args", {}).items():  # a data overlay wins
            assert printed["data"]["init_args"][key] == value, (base, key)


def test_a_reward_name_typo_is_one_line_naming_the_overlay_file_and_line(tmp_path, monkeypatch):
    from unigen.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo.yaml"
    typo.write_text((REPO / "configs/ablations/weight_image.yaml").read_text().replace("image/vqa", "imag/vqa"))
    with pytest.raises(ConfigError) as err:
        main(["fit", "--config", str(REPO / "configs/tiny.yaml"), "--config", str(typo)])
    assert err.value.__suppress_context__ and err.value.__cause__ is None
    line = next(n for n, text in enumerate(typo.read_text().splitlines(), 1) if "imag/vqa" in text)
    assert str(err.value).startswith(f"{typo} line {line}: reward names must be '<image|text>/<name>'")
    assert "['imag/vqa']" in str(err.value)


def test_the_eval_overlay_takes_the_benchmark_file_from_the_user(tmp_path, monkeypatch, capsys):
    from unigen.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    stack = ["fit", "--config", str(REPO / "configs/tiny.yaml"), "--config", str(REPO / "configs/eval_callback.yaml")]
    mine = str(REPO / "tests/assets/benchmarks/geneval_mini.jsonl")
    with pytest.raises(SystemExit):
        main(stack + ["--trainer.callbacks.init_args.benchmark", f"{{class_path: geneval, init_args: {{path: {mine}}}}}",
                      "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)["trainer"]["callbacks"]
    assert printed[0]["class_path"].endswith("ModelCheckpoint")
    assert yaml.safe_load(printed[1]["init_args"]["benchmark"]) == {"class_path": "geneval", "init_args": {"path": mine}}
    with pytest.raises(ConfigError, match="has no benchmark file: give its path"):
        main(stack)
