"""Janus-Pro: the adapter, its presets and tokenizers."""
