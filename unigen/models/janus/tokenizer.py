"""Janus tokenizers: loading the one saved beside a checkpoint, and an offline byte-level one for
tiny presets (no hub, no training, deterministic)."""

from __future__ import annotations

from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from unigen.models.byte_tokenizer import byte_level

BOS, EOS, PAD = "<|begin_of_sentence|>", "<|end_of_sentence|>", "<|pad|>"
BOI, EOI, IMAGE = "<begin_of_image>", "<end_of_image>", "<image_placeholder>"
CHAT_TOKENS = ("<|User|>", "<|Assistant|>")


def byte_level_tokenizer(extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """256 byte tokens + Janus-style special tokens (+ optional whole-word tokens)."""
    return byte_level(BOS, EOS, PAD, {"boi_token": BOI, "eoi_token": EOI, "image_token": IMAGE}, CHAT_TOKENS,
                      extra_words)


def load_janus_tokenizer(path: str) -> Any:
    """Load the tokenizer saved beside a Janus checkpoint, with a clear error if it is missing."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"no tokenizer found in '{path}': a unigen model folder needs one ({err})") from err
