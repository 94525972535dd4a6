"""``run.py export --ckpt <lightning ckpt | sharded folder> --out <dir>``."""

from __future__ import annotations

import logging

from jsonargparse import ActionConfigFile, ArgumentParser

from unigen.export.writer import export_checkpoint


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="run.py export",
        description="Write a unigen Lightning checkpoint as a transformers folder (safetensors, processor, "
        "generation config, model card).",
        parser_mode="omegaconf",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with these options")
    parser.add_function_arguments(export_checkpoint, fail_untyped=True)
    return parser


def main(argv: list[str]) -> None:
    """Export a checkpoint (or FSDP sharded folder) as a transformers model folder."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.pop("config", None)
    out = export_checkpoint(**args.as_dict())
    print(out)
