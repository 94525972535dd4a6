"""The loss a training step returns and the gradient it hands the optimizer, against a hand computation.

The hand computation runs the model through the ``UnifiedModel`` interface only (``embed_mixed``,
``backbone``, ``text_logits``, ``image_logits``) and plain ``F.cross_entropy`` on the supervised
positions: per-sample weights applied, each modality divided by its supervised-token count over the
whole optimizer step (all micro-batches, all ranks), lambdas applied. Lambdas differ (0.3 / 1.7),
weights differ per sample and per modality, text and image token counts differ, so swapping the
lambdas, normalising by the wrong count or dropping the accumulation / world-size rescale all fail.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from datamodules.synthetic import SyntheticDataModule
from tests.conftest import MODEL_PRESETS
from tests.scale_helpers import fit_config, run_fit
from unigen.data.batch import Batch
from unigen.models.unified import UnifiedModel
from unigen.module import UnifiedLM

LAMBDA_TEXT, LAMBDA_IMAGE = 0.3, 1.7
IGNORE = -100  # the unsupervised label, as ``unigen.losses`` documents it
BATCH = 4

pytestmark = pytest.mark.usefixtures("one_thread")


def sample_weight(key: str, modality: str) -> float:
    """A fixed weight in {0.25, 0.5, ..., 2.0} per (sample, modality), the same on every rank and run."""
    return 0.25 * (1 + zlib.crc32(f"{modality}/{key}".encode()) % 8)


class LossProbe(L.Callback):
    """Weights every sample, and records the first optimizer step: the model before it, each micro-batch,
    each ``training_step`` loss and the gradients before the optimizer (before clipping). With ``out``,
    each rank saves them to ``<out>/rank<r>.pt``."""

    def __init__(self, out: str | None = None):
        self.out = out
        self.initial: dict[str, torch.Tensor] = {}
        self.batches: list[Batch] = []
        self.losses: list[float] = []
        self.grads: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch: Batch, batch_idx: int) -> None:
        for modality in ("text", "image"):
            batch.set_weights(modality, torch.tensor([sample_weight(k, modality) for k in batch.keys]))
        if trainer.global_step == 0:
            self.batches.append(batch.to("cpu"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if len(self.losses) < len(self.batches):
            # Lightning hands the callback the step's loss divided by accumulate_grad_batches
            self.losses.append(float(outputs["loss"]) * trainer.accumulate_grad_batches)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step != 0:
            return
        self.grads = {n: p.grad.detach().cpu().clone() for n, p in pl_module.named_parameters() if p.grad is not None}

    def on_train_end(self, trainer, pl_module) -> None:
        if self.out is not None:
            torch.save({"initial": self.initial, "batches": self.batches, "losses": self.losses, "grads": self.grads},
                       Path(self.out) / f"rank{trainer.global_rank}.pt")


def hand_losses(net: UnifiedModel, batches: list[Batch], lambda_text: float, lambda_image: float
                ) -> list[torch.Tensor]:
    """Each micro-batch's share of the optimizer step's loss; their sum is the step's loss."""
    counts = {m: sum(int((getattr(b, f"{m}_labels") != IGNORE).sum()) for b in batches) for m in ("text", "image")}
    lambdas = {"text": lambda_text, "image": lambda_image}
    heads = {"text": net.text_logits, "image": net.image_logits}
    shares = []
    for b in batches:
        hidden, _ = net.backbone(net.embed_mixed(b.input_ids, b.image_mask), b.attention_mask, b.position_ids)
        share = 0.0
        for modality in ("text", "image"):
            labels = getattr(b, f"{modality}_labels")
            supervised = labels != IGNORE
            ce = F.cross_entropy(heads[modality](hidden[supervised]).float(), labels[supervised], reduction="none")
            weight = getattr(b, f"{modality}_weight")[b.sample_index[supervised]]
            share = share + lambdas[modality] * (weight * ce).sum() / counts[modality]
        shares.append(share)
    return shares


def check_against_hand(module: UnifiedLM, batches: list[Batch], losses: list[float],
                       grads: dict[str, torch.Tensor]) -> None:
    """``losses`` (each micro-batch's ``training_step`` loss, all ranks' micro-batches of one optimizer
    step) and ``grads`` against the hand computation on ``module``'s current weights."""
    n_text = sum(int((b.text_labels != IGNORE).sum()) for b in batches)
    n_image = sum(int((b.image_labels != IGNORE).sum()) for b in batches)
    assert n_text != n_image and min(n_text, n_image) > 0, (n_text, n_image)  # the counts are told apart
    assert len({float(w) for b in batches for w in (*b.text_weight, *b.image_weight)}) > 2  # weights vary
    shares = hand_losses(module.net, batches, LAMBDA_TEXT, LAMBDA_IMAGE)
    expected = [float(s.detach()) * len(batches) for s in shares]  # x accumulate_grad_batches x world_size
    assert losses == pytest.approx(expected, rel=1e-5), (losses, expected)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    hand = torch.autograd.grad(sum(shares), list(params.values()), allow_unused=True)
    hand = {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(params.items(), hand)}
    assert set(grads) <= set(hand)
    scale = max(float(g.abs().max()) for g in hand.values())
    error = max(float((grads.get(n, torch.zeros_like(g)) - g).abs().max()) for n, g in hand.items())
    assert scale > 0 and error < 1e-4 * scale, f"gradient off by {error:.3g} (largest hand gradient {scale:.3g})"


@pytest.mark.parametrize("preset", MODEL_PRESETS)
@pytest.mark.parametrize("accumulate", [1, 2])
def test_training_step_loss_and_gradient_match_hand_computation(preset: str, accumulate: int):
    L.seed_everything(0)
    module = UnifiedLM(model=preset, lambda_text=LAMBDA_TEXT, lambda_image=LAMBDA_IMAGE, warmup_steps=1)
    data = SyntheticDataModule(train_samples=BATCH * accumulate, val_samples=BATCH, batch_size=BATCH, shuffle=False)
    probe = LossProbe()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, accumulate_grad_batches=accumulate,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[probe])
    trainer.fit(module, data)
    assert len(probe.batches) == len(probe.losses) == accumulate
    module.load_state_dict(probe.initial)  # the weights the gradients were taken at
    check_against_hand(module, probe.batches, probe.losses, probe.grads)


@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_two_rank_ddp_gradient_matches_hand_computation(preset: str, tmp_path: Path):
    """2 gloo ranks x accumulation 2: every rank's gradient is that of the global hand loss."""
    config = fit_config(tmp_path, devices=2, batch_size=BATCH, accumulate=2, max_steps=1, train_samples=4 * BATCH,
                        extra_trainer={"callbacks": [{"class_path": "tests.test_loss_scale.LossProbe",
                                                      "init_args": {"out": str(tmp_path)}}],
                                       "logger": False, "enable_checkpointing": False})
    run_fit(config, f"--model.init_args.model={preset}", f"--model.init_args.lambda_text={LAMBDA_TEXT}",
            f"--model.init_args.lambda_image={LAMBDA_IMAGE}")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert {k for b in ranks[0]["batches"] for k in b.keys}.isdisjoint(k for b in ranks[1]["batches"] for k in b.keys)
    assert ranks[0]["grads"].keys() == ranks[1]["grads"].keys()
    for name, grad in ranks[0]["grads"].items():
        torch.testing.assert_close(grad, ranks[1]["grads"][name])  # DDP all-reduced them
    module = UnifiedLM(model=preset, lambda_text=LAMBDA_TEXT, lambda_image=LAMBDA_IMAGE)
    module.configure_model()
    module.train().load_state_dict(ranks[0]["initial"])
    batches = ranks[0]["batches"] + ranks[1]["batches"]
    check_against_hand(module, batches, ranks[0]["losses"] + ranks[1]["losses"], ranks[0]["grads"])
