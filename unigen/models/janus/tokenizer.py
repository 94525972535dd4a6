"""Janus tokenizers: loading the one saved beside a checkpoint, and an offline byte-level one for
tiny presets (no hub, no training, deterministic)."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerFast

BOS, EOS, PAD = "<|begin_of_sentence|>", "<|end_of_sentence|>", "<|pad|>"
BOI, EOI, IMAGE = "<begin_of_image>", "<end_of_image>", "<image_placeholder>"
CHAT_TOKENS = ("<|User|>", "<|Assistant|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, BOI, EOI, IMAGE, *CHAT_TOKENS)


def byte_level_tokenizer(extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """256 byte tokens + Janus-style special tokens (+ optional whole-word tokens).

    Every string is encodable; ``extra_words`` become single tokens so a small domain vocabulary
    costs one id per word.
    """
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    if extra_words:
        tok.add_tokens(list(extra_words))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE, "boi_token": BOI, "eoi_token": EOI},
        model_max_length=4096,
    )


def load_janus_tokenizer(path: str) -> Any:
    """Load the tokenizer saved beside a Janus checkpoint, with a clear error if it is missing."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"no tokenizer found in '{path}': a unigen model folder needs one ({err})") from err
