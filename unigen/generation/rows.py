"""Per-row decoding state: every row moves text -> image -> done on its own schedule.

All rows advance in lockstep (one token per step) but each is in its own phase. A text row that
samples begin-of-image (unified) or ends its text (explicit) switches; its next input is BOI and
its next token comes from the image head. Rows that finish keep occupying their batch slot (fed
pad, output ignored) so the static cache never changes shape.

``interleaved`` mode adds turns: a row that finished an image and may draw another (fewer than
``max_images`` so far) is fed its last image id, then end-of-image (phase ``CLOSE``: the program
supplies EOI, as training supervises it), and goes back to text: a reflection, then BOI (redraw)
or EOS (done). Each row keeps its own turn count, text budget per turn and image slots.

``step`` is a Python int in the eager loop or a 0-d device tensor in the static-shape step
(``unigen.generation.graphs``); every state update is in place and free of host syncs, so the same
code runs inside a captured CUDA graph.
"""

from __future__ import annotations

import numpy as np
import torch

from unigen.data.trajectory import Turn
from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.pick import IMAGE_STREAM, TEXT_STREAM, Noise, choose
from unigen.models.unified import UnifiedModel

TEXT, IMAGE, DONE, CLOSE = 0, 1, 2, 3
STOP_NONE, STOP_IMAGE, STOP_EOS, STOP_LIMIT = 0, 1, 2, 3
STOP_NAMES = {STOP_NONE: "", STOP_IMAGE: "image", STOP_EOS: "eos", STOP_LIMIT: "limit"}


def next_embeds(model: UnifiedModel, text_ids: torch.Tensor | None, image_ids: torch.Tensor,
                use_image: torch.Tensor | None) -> torch.Tensor:
    """(R, 1, H) embeddings of the next inputs ``RowStates.step`` returned."""
    embeds = model.embed_image(image_ids)
    if text_ids is not None:
        embeds = torch.where(use_image[:, None], embeds, model.embed_text(text_ids).to(embeds.dtype))
    return embeds[:, None]


class RowStates:
    """Phases, counters and outputs of B rows (the conditional rows; CFG rows mirror them)."""

    def __init__(self, model: UnifiedModel, config: SamplingConfig, noise: Noise, steps: int, device: torch.device):
        """``noise``: the rows' random streams; ``steps``: the decoding bound (``max_new_tokens``)."""
        spec = model.spec
        self.model, self.config, self.spec = model, config, spec
        self.noise = noise
        n = noise.keys.shape[0]
        start = IMAGE if config.mode == "direct" else TEXT
        self.phase = torch.full((n,), start, dtype=torch.long, device=device)
        self.stop = torch.zeros(n, dtype=torch.long, device=device)
        self.switched = torch.zeros(n, dtype=torch.bool, device=device)
        self.turn_text = torch.zeros(n, dtype=torch.long, device=device)
        """text tokens written in the current turn"""
        self.text_ids = torch.full((n, steps), spec.pad_id, dtype=torch.long, device=device)
        self.text_turn = torch.full((n, steps), -1, dtype=torch.long, device=device)
        """the turn of the text token written at each step (-1: none there)"""
        self.image_count = torch.zeros(n, dtype=torch.long, device=device)
        """ids of the current image drawn so far"""
        self.images_done = torch.zeros(n, dtype=torch.long, device=device)
        self.image_ids = torch.zeros((n, config.images_per_row * spec.image.num_tokens), dtype=torch.long, device=device)

    def phase_counts(self) -> list[int]:
        """Rows in TEXT, IMAGE, DONE, CLOSE (one host sync per step)."""
        return torch.bincount(self.phase, minlength=4).tolist()

    def step(self, hidden: torch.Tensor, step: int | torch.Tensor, text: bool, image: bool):
        """Choose each live row's next token from its head; return the next inputs.

        ``hidden``: (R, H) last hidden states, R = B or 2B ([cond; uncond]). ``text`` / ``image``:
        run that head (needed when any row is in that phase, ``text`` also for CLOSE rows; running
        it with none there changes nothing). Returns (text ids (R,), image ids (R,), use the image
        embedding (R,) bool); without ``text``, text ids and the flags are None: every row is fed
        its image id (finished rows' outputs are ignored).
        """
        n = self.phase.shape[0]
        image_only = not text
        next_image = torch.zeros(n, dtype=torch.long, device=hidden.device)
        in_image = self.phase == IMAGE
        closing = self.phase == CLOSE
        if text:
            next_text = torch.full((n,), self.spec.pad_id, dtype=torch.long, device=hidden.device)
            switching = self._text_step(hidden[:n], step, next_text)
        if image:
            next_image = self._image_step(hidden, step, in_image)
            finished = in_image & (self.image_count == self.spec.image.num_tokens)
            self.images_done += finished.long()
            last = self.images_done >= self.config.images_per_row
            self.phase.masked_fill_(finished & last, DONE)
            self.stop.masked_fill_(finished & last, STOP_IMAGE)
            self.phase.masked_fill_(finished & ~last, CLOSE)  # fed its last id now, EOI next step
            self.image_count.masked_fill_(finished, 0)
            in_image = in_image & ~(finished & last)
        cfg_rows = hidden.shape[0] // n
        if image_only:
            return None, next_image.repeat(cfg_rows), None
        self.phase.masked_fill_(switching, IMAGE)
        self.phase.masked_fill_(closing, TEXT)
        self.turn_text.masked_fill_(closing, 0)
        next_text = torch.where(switching, torch.full_like(next_text, self.spec.boi_id), next_text)
        next_text = torch.where(closing, torch.full_like(next_text, self.spec.eoi_id), next_text)
        if cfg_rows == 2:  # unconditional rows: pad in place of reasoning, reflections and EOI; BOI at the switch
            next_text = torch.cat([next_text, self.model.unconditional(next_text)])
        return next_text, next_image.repeat(cfg_rows), in_image.repeat(cfg_rows)

    def _text_step(self, cond_hidden: torch.Tensor, step: int | torch.Tensor, next_text: torch.Tensor) -> torch.Tensor:
        """Sample text for TEXT rows; end or switch rows; fill ``next_text``. Returns switching rows."""
        cfg, spec = self.config, self.spec
        in_text = self.phase == TEXT
        tok = choose(self.model.text_logits(cond_hidden), self.noise, step, TEXT_STREAM, cfg.greedy,
                     cfg.text_temperature, cfg.top_k, cfg.top_p)
        emitted_boi = in_text & (tok == spec.boi_id)
        emitted_eos = in_text & (tok == spec.eos_id) & ~emitted_boi
        at_limit = in_text & ~emitted_boi & ~emitted_eos & (self.turn_text >= cfg.max_reasoning_tokens)
        ending = emitted_boi | emitted_eos | at_limit
        writing = in_text & ~ending
        column = torch.as_tensor(step, device=tok.device).view(1)
        self.text_ids.index_copy_(1, column, torch.where(writing, tok, self.text_ids.index_select(1, column)[:, 0])[:, None])
        self.text_turn.index_copy_(1, column, torch.where(writing, self.images_done, -1)[:, None])
        self.turn_text += writing.long()
        self.switched |= emitted_boi
        if cfg.mode == "explicit":
            switching = ending
        else:
            switching = emitted_boi
            self.phase.masked_fill_(emitted_eos | at_limit, DONE)
            self.stop.masked_fill_(emitted_eos, STOP_EOS)
            self.stop.masked_fill_(at_limit, STOP_LIMIT)
        next_text.copy_(torch.where(writing, tok, next_text))
        return switching

    def _image_step(self, hidden: torch.Tensor, step: int | torch.Tensor, in_image: torch.Tensor) -> torch.Tensor:
        """Guided image id for every row (the image head's sampling phase); recorded for IMAGE rows.
        Returns (B,) ids."""
        cfg, size = self.config, self.spec.image.num_tokens
        guidance = cfg.cfg if hidden.shape[0] != in_image.shape[0] else 1.0
        tok = self.model.image_head.sample_step(
            self.model, hidden, guidance,
            lambda logits: choose(logits, self.noise, step, IMAGE_STREAM, cfg.greedy, cfg.image_temperature, cfg.image_top_k))
        slot = self.images_done.clamp(max=cfg.images_per_row - 1) * size + self.image_count.clamp(max=size - 1)
        col = slot[:, None]
        current = self.image_ids.gather(1, col)
        self.image_ids.scatter_(1, col, torch.where(in_image[:, None], tok[:, None], current))
        self.image_count += in_image.long()
        return tok

    def results(self) -> list[SampleResult]:
        """One result per row; raises if a row did not finish (a loop-bound bug, never a hang)."""
        if bool((self.phase != DONE).any()):
            raise RuntimeError(f"rows {torch.nonzero(self.phase != DONE).flatten().tolist()} did not finish")
        out = []
        size = self.spec.image.num_tokens
        text_ids, text_turn = self.text_ids.cpu().numpy(), self.text_turn.cpu().numpy()
        images, done = self.image_ids.cpu().numpy().astype(np.int64), self.images_done.tolist()
        stops, switched = self.stop.tolist(), self.switched.tolist()
        for row in range(len(stops)):
            texts = [text_ids[row][text_turn[row] == k].tolist() for k in range(done[row] + 1)]
            drawn = [images[row, k * size:(k + 1) * size] for k in range(done[row])]
            if len(texts) > max(len(drawn), 1) and not texts[-1]:  # no text after its last image: EOI, EOS
                texts = texts[:-1]
            first = drawn[0] if drawn else np.zeros(0, dtype=np.int64)
            turns = [Turn(self.spec.decode_text(ids), drawn[k] if k < len(drawn) else np.zeros(0, dtype=np.int64))
                     for k, ids in enumerate(texts[1:], start=1)]
            out.append(SampleResult(self.spec.decode_text(texts[0]), texts[0], first, switched[row],
                                    STOP_NAMES[stops[row]], turns))
        return out
