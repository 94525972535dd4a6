"""GenEvalScore: GenEval-style object checks from an open-vocabulary detector in transformers (OWLv2).

Detector: ``Owlv2ForObjectDetection`` (any OWL-ViT v2 folder: weights, ``config.json``, tokenizer;
``preprocessor_config.json`` is read for mean / std if present). Preprocessing is done here (pad
to a square with grey, resize to the vision tower's side, normalise) because transformers' OWLv2
image processors need scipy or torchvision. Each image is queried with "a photo of a {class}" for
the classes its metadata names; every predicted box takes its best class among them; boxes under
``threshold`` (GenEval: 0.3; ``counting`` prompts: ``count_threshold`` 0.9) are dropped and
same-class boxes overlapping by IoU > ``nms_iou`` are suppressed. The checks are GenEval's rules
(see :mod:`unigen.rewards.geneval_rules`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unigen.data.trajectory import Trajectory
from unigen.dtypes import torch_dtype
from unigen.rewards.geneval_rules import Detection, classes_of, classify_color, labelled_checks
from unigen.rewards.images import pil_images

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4) x (M, 4) boxes (x0, y0, x1, y1) -> (N, M) IoU."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = scores.argsort(descending=True).tolist()
    keep: list[int] = []
    for i in order:
        if not keep or float(box_iou(boxes[i:i + 1], boxes[keep]).max()) <= iou:
            keep.append(i)
    return keep


class GenEvalScore:
    """Image reward: fraction (or all-or-nothing, ``strict``) of GenEval checks an image passes."""

    modality = "image"

    def __init__(self, detector: str, threshold: float = 0.3, count_threshold: float = 0.9, nms_iou: float = 0.5,
                 max_objects: int = 16, strict: bool = True, batch_size: int = 8, device: str = "cpu",
                 dtype: str | None = None, query: str = "a photo of a {}", max_query_tokens: int = 16):
        """
        Args:
            detector: folder with an OWLv2 model (``Owlv2ForObjectDetection``) and its tokenizer.
            threshold: detection confidence threshold (GenEval: 0.3).
            count_threshold: threshold for prompts tagged ``counting`` (GenEval: 0.9).
            nms_iou: same-class boxes overlapping more than this are suppressed.
            max_objects: at most this many detections per class.
            strict: 1.0 only if every check passes (GenEval's per-image score); else the fraction passed.
            batch_size: images per detector forward pass.
            device: detector device.
            dtype: detector dtype name; None keeps the checkpoint's.
            query: text query template for a class name.
            max_query_tokens: queries are padded / truncated to this many tokens (EOS kept last).
        """
        from transformers import AutoTokenizer, Owlv2ForObjectDetection

        self.model = Owlv2ForObjectDetection.from_pretrained(detector, dtype=torch_dtype(dtype)).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(detector)
        pre = Path(detector) / "preprocessor_config.json"
        conf = json.loads(pre.read_text()) if pre.is_file() else {}
        self.mean = torch.tensor(conf.get("image_mean", CLIP_MEAN)).view(3, 1, 1)
        self.std = torch.tensor(conf.get("image_std", CLIP_STD)).view(3, 1, 1)
        self.side = self.model.config.vision_config.image_size
        self.threshold, self.count_threshold, self.nms_iou = threshold, count_threshold, nms_iou
        self.max_objects, self.strict, self.batch_size = max_objects, strict, batch_size
        self.query, self.max_query_tokens = query, max_query_tokens

    def _pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """Pad bottom/right to a square with grey, resize to the model side, normalise."""
        out = []
        for image in images:
            side = max(image.size)
            canvas = Image.new("RGB", (side, side), (128, 128, 128))
            canvas.paste(image.convert("RGB"), (0, 0))
            arr = np.asarray(canvas.resize((self.side, self.side), Image.BILINEAR), dtype=np.float32) / 255
            out.append((torch.from_numpy(arr).permute(2, 0, 1) - self.mean) / self.std)
        return torch.stack(out).to(self.model.device, self.model.dtype)

    def _query_ids(self, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids per class query, EOS last (OWL pools the text at the highest id, the EOS)."""
        tok, length = self.tokenizer, self.max_query_tokens
        rows = [tok.encode(self.query.format(c), add_special_tokens=False)[: length - 1] + [tok.eos_token_id]
                for c in classes]
        ids = torch.full((len(rows), length), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        return ids.to(self.model.device), mask.to(self.model.device)

    @torch.no_grad()
    def detect(self, images: list[Image.Image], metadata: list[dict]) -> list[list[Detection]]:
        """Detections per image, among the classes its metadata names."""
        classes = list(dict.fromkeys(c for m in metadata for c in classes_of(m)))
        ids, mask = self._query_ids(classes)
        n = len(images)
        out = self.model(input_ids=ids.repeat(n, 1), attention_mask=mask.repeat(n, 1),
                         pixel_values=self._pixels(images))
        scores = out.logits.float().sigmoid().cpu()  # (B, boxes, queries)
        boxes = out.pred_boxes.float().cpu()  # (B, boxes, 4) cx, cy, w, h relative to the padded square
        result = []
        for b, (image, meta) in enumerate(zip(images, metadata)):
            own = [classes.index(c) for c in classes_of(meta)]
            best, which = scores[b][:, own].max(-1)
            cx, cy, w, h = (boxes[b] * max(image.size)).unbind(-1)
            xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
            cut = self.count_threshold if meta.get("tag") == "counting" else self.threshold
            found = []
            for q, cls in enumerate(own):
                sel = torch.nonzero((which == q) & (best >= cut)).flatten()
                for k in nms(xyxy[sel], best[sel], self.nms_iou)[: self.max_objects]:
                    i = int(sel[k])
                    found.append(Detection(classes[cls], float(best[i]), tuple(xyxy[i].tolist())))
            result.append(found)
        return result

    def checks(self, trajectories: list[Trajectory]) -> list[list[tuple[str, bool]] | None]:
        """GenEval's labelled checks per trajectory (:func:`labelled_checks`); None where there is no
        image or the metadata names no class."""
        images = pil_images(trajectories)
        todo = [i for i, (t, im) in enumerate(zip(trajectories, images)) if im is not None and classes_of(t.metadata)]
        out: list[list[tuple[str, bool]] | None] = [None] * len(trajectories)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            found = self.detect([images[i] for i in chunk], [trajectories[i].metadata for i in chunk])
            for i, dets in zip(chunk, found):
                colors = [classify_color(images[i], d.box) for d in dets]
                out[i] = labelled_checks(trajectories[i].metadata, dets, colors)
        return out

    def explain(self, trajectories: list[Trajectory]) -> list[list[str] | None]:
        """What each image misses (the explaining-judge contract, docs/rewards.md): a finding per
        failed check (``"expected red dog"``), [] when every check passes, None where it cannot say."""
        return [None if checks is None else [f"expected {label}" for label, ok in checks if not ok]
                for checks in self.checks(trajectories)]

    def __call__(self, trajectories: list[Trajectory]) -> list[float | None]:
        out: list[float | None] = []
        for checks in self.checks(trajectories):
            passed = None if checks is None else [ok for _, ok in checks]
            out.append(None if passed is None else float(all(passed)) if self.strict else sum(passed) / len(passed))
        return out
