"""The ShapesWorld text tokenizer: byte-level (any text encodes) with every world word as one token."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from unigen.models.bagel.adapter import byte_tokenizer as bagel_byte_tokenizer
from unigen.models.janus.tokenizer import byte_level_tokenizer
from unigen.worlds.shapes.vocab import WORDS

WORLD_TOKENS = tuple(WORDS) + tuple(" " + w for w in WORDS)
"""Each world word alone (text start) and with its leading space (inside a sentence)."""


def shapes_tokenizer() -> PreTrainedTokenizerFast:
    """Built offline and deterministically; saved beside checkpoints, reloads with AutoTokenizer."""
    return byte_level_tokenizer(extra_words=WORLD_TOKENS)


def shapes_bagel_tokenizer() -> PreTrainedTokenizerFast:
    """The same world words with BAGEL's special tokens (the ``shapes-bagel`` preset)."""
    return bagel_byte_tokenizer(extra_words=WORLD_TOKENS)
