"""An offline byte-level tokenizer for tiny presets: 256 byte tokens plus a family's special tokens
(no hub, no training, deterministic). Each family names its own special tokens."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def byte_level(bos: str, eos: str, pad: str, named: dict[str, str], others: tuple[str, ...] = (),
               extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """Byte tokens, then the special tokens ``bos``, ``eos``, ``pad``, the ``named`` ones (attribute
    -> token, e.g. ``{"boi_token": "<begin_of_image>"}``) and ``others``, then ``extra_words`` as
    whole-word tokens (a small domain vocabulary costs one id per word). Every string is encodable."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([bos, eos, pad, *named.values(), *others])
    if extra_words:
        tok.add_tokens(list(extra_words))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad,
                                   extra_special_tokens=dict(named), model_max_length=4096)
