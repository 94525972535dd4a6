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
        assert not pretrained and config.model_type == "janus" and tokenizer is not None
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
