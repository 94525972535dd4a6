"""The LightningModule: a unified model with a text loss head and an image loss head."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torchmetrics import MeanMetric

from unigen.data.batch import Batch, block_attention
from unigen.lora import LoraSettings, add_lora
from unigen.losses import HeadOutput, combine, weighted_token_ce
from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model, load_spec
from unigen.models.sharded import load_sharded
from unigen.scale.fsdp2 import mixed_precision
from unigen.optim import adamw, warmup_cosine

# The frozen VQ model and vision encoder stay in eval mode on purpose.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


def backbone_inputs(
    embeds: torch.Tensor, batch: Batch, net: UnifiedModel
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(inputs_embeds, attention_mask, position_ids) for the backbone, packed or padded.

    A family whose image blocks are bidirectional (``image_head.autoregressive`` false) gets the
    explicit (R, 1, T, T) block mask (:func:`unigen.data.batch.block_attention`). Otherwise packed
    batches pass no 2-D mask (transformers builds the block-diagonal mask from the position ids);
    for FlashAttention they are flattened into one row, which selects its varlen kernel.
    Reshape the hidden states back with ``hidden.view(*batch.input_ids.shape, -1)``.
    """
    if not net.image_head.autoregressive:
        return embeds, block_attention(batch), batch.position_ids
    if not batch.packed:
        return embeds, batch.attention_mask, batch.position_ids
    positions = batch.position_ids
    if net.attn_implementation.startswith("flash"):
        return embeds.reshape(1, -1, embeds.shape[-1]), None, positions.reshape(1, -1)
    return embeds, None, positions


class UnifiedLM(L.LightningModule):
    """Reward-weighted post-training of a unified text-image model."""

    def __init__(
        self,
        model: str = "janus-tiny",
        freeze: tuple[str, ...] = ("vision", "vq"),
        attn_implementation: str = "sdpa",
        prompt_template: str | None = None,
        lambda_text: float = 1.0,
        lambda_image: float = 1.0,
        lr: float = 3e-4,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 10,
        min_lr_ratio: float = 0.1,
        gradient_checkpointing: bool | Literal["full", "selective"] = False,
        compile_layers: bool = False,
        logits_chunk_size: int = 0,
        lora: dict | None = None,
        flow_timesteps: tuple[float, float] | None = None,
    ):
        """
        Args:
            model: a preset name (``janus-tiny``), an architecture YAML, or a transformers folder.
            freeze: parts kept frozen (``vision``: understanding encoder + aligner, ``vq``: VQ model).
            attn_implementation: ``sdpa`` | ``eager`` | ``flash_attention_2``.
            prompt_template: chat template with ``{prompt}``; default Janus' ``<|User|>: ...``.
            lambda_text: weight of the text loss head.
            lambda_image: weight of the image loss head.
            lr: peak learning rate (AdamW).
            weight_decay: AdamW weight decay on matrices.
            betas: AdamW betas.
            warmup_steps: linear warmup steps, then cosine decay.
            min_lr_ratio: final LR as a fraction of ``lr``.
            gradient_checkpointing: recompute transformer blocks in backward: ``true`` / ``full``
                (whole blocks) or ``selective`` (keep matmul and attention outputs, recompute the
                elementwise ops; ``unigen.scale.activations``).
            compile_layers: ``torch.compile`` each decoder layer (GPU; compiles on the first steps).
            logits_chunk_size: run each head on this many supervised positions at a time and
                recompute their logits in backward (0: all at once); bounds the fp32 logits memory.
            lora: train low-rank adapters on the backbone instead of all weights: the fields of
                ``unigen.lora.LoraSettings`` (``rank``, ``alpha``, ``dropout``, ``targets``); ``{}`` = defaults.
            flow_timesteps: flow-matching image heads (BAGEL) only: draw the training times in this
                ``(low, high)`` part of [0, 1], 1 being pure noise; ``[0.7, 1.0]`` fits only the
                noisy end, where a picture's layout is decided, and leaves the detail to the base
                (docs/shapes.md); None: the whole range, as in pretraining.
        """
        super().__init__()
        self.lora = None if lora is None else LoraSettings.from_dict(lora)
        self.save_hyperparameters()
        self.spec = load_spec(model, prompt_template)
        self.net: UnifiedModel | None = None
        self.val_text, self.val_image, self.val_switch = MeanMetric(), MeanMetric(), MeanMetric()

    def configure_model(self) -> None:
        """Build the model here (not in ``__init__``) so FSDP can shard it as it is created."""
        if self.net is not None:
            return
        hp = self.hparams
        mesh = getattr(self, "_device_mesh", None)  # set by ModelParallelStrategy (unigen.scale.fsdp2)
        if mesh is not None:
            if self.lora is not None:  # `lora: {}` (the defaults) counts
                raise ValueError("lora is not supported with the FSDP2 strategy: train adapters with DDP or one device")
            self.net = load_sharded(hp.model, mesh["data_parallel"], self.trainer.strategy.root_device,
                                    freeze=tuple(hp.freeze), attn_implementation=hp.attn_implementation,
                                    prompt_template=hp.prompt_template, mp_policy=mixed_precision(self.trainer.precision))
        else:
            self.net = load_model(hp.model, tuple(hp.freeze), hp.attn_implementation, prompt_template=hp.prompt_template)
        self.apply_training_options()

    def apply_training_options(self) -> None:
        """The flow head's training times, LoRA, activation checkpointing and per-layer compilation on the
        built ``net``."""
        hp = self.hparams
        if hp.flow_timesteps is not None:
            if not hasattr(self.net.image_head, "timestep_range"):
                raise ValueError(f"flow_timesteps {list(hp.flow_timesteps)}: the model {hp.model!r} draws with a "
                                 f"{type(self.net.image_head).__name__}, not a flow-matching head")
            self.net.image_head.timestep_range = tuple(hp.flow_timesteps)
        if self.lora is not None:
            add_lora(self.net, self.lora)
        if hp.gradient_checkpointing:
            mode = "full" if hp.gradient_checkpointing is True else hp.gradient_checkpointing
            self.net.set_gradient_checkpointing(True, mode)
        if hp.compile_layers:
            for layer in self.net.modules():
                if isinstance(layer, self.net.decoder_layer_class()):
                    layer.compile()
        self.net.train(self.training)  # from_pretrained returns eval mode; frozen parts stay in eval

    def setup(self, stage: str) -> None:
        """Hand the tokenizer and image geometry to the datamodule before it builds loaders."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "connect"):
            datamodule.connect(self.spec)

    def heads(self, batch: Batch, noise_seed: int = 0) -> tuple[HeadOutput, HeadOutput]:
        """Run the backbone once and both loss heads over their supervised positions (the image loss
        is the model family's image head: Janus' weighted token cross-entropy over the codebook,
        BAGEL's flow-matching MSE, whose noise and times are drawn from ``noise_seed``)."""
        head = self.net.image_head
        generator = torch.Generator().manual_seed(noise_seed)
        embeds, state = head.inputs(self.net, batch.input_ids, batch.image_mask, batch.image_values, generator)
        embeds, mask, positions = backbone_inputs(embeds, batch, self.net)
        hidden, _ = self.net.backbone(embeds, mask, positions, experts=batch.image_mask.reshape(embeds.shape[:2]))
        hidden = hidden.view(*batch.input_ids.shape, -1)
        chunk = self.hparams.logits_chunk_size
        text = weighted_token_ce(self.net.text_logits, hidden, batch.text_labels, batch.token_weights("text"), chunk,
                                 keep_predictions=True)  # the switch accuracy
        image = head.loss(self.net, hidden, batch.image_labels, batch.token_weights("image"), state, chunk)
        return text, image

    def noise_seed(self, batch_idx: int) -> int:
        """The image head's training noise for this step: a function of (step, micro-batch, rank),
        so a resumed fit draws what the uninterrupted one drew."""
        return (self.global_step * 100_003 + batch_idx) * 1_009 + self.global_rank

    def _global_counts(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Supervised tokens of the whole optimizer step: this rank's window, summed over ranks."""
        if batch.window_tokens is not None:
            text, image = batch.window_tokens
        elif self.trainer.accumulate_grad_batches > 1:
            raise RuntimeError(
                "accumulate_grad_batches > 1 needs train batches stamped with their window's token counts: "
                "wrap the train loader in unigen.data.windows.AccumulationWindows"
            )
        else:
            text, image = batch.supervised_tokens()
        counts = torch.stack([text, image]).to(self.device, torch.float32)
        counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        return counts[0], counts[1]

    def _switch_accuracy(self, text: HeadOutput) -> torch.Tensor | None:
        at_switch = text.labels == self.spec.boi_id
        if not at_switch.any():
            return None
        return (text.predictions[at_switch] == self.spec.boi_id).float().mean()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        text, image = self.heads(batch, self.noise_seed(batch_idx))
        n_text, n_image = self._global_counts(batch)
        hp = self.hparams
        loss = combine(text, image, n_text, n_image, hp.lambda_text, hp.lambda_image)
        # Lightning divides by the accumulation steps and DDP/FSDP average over ranks: undo both,
        # the global token counts already normalise.
        loss = loss * self.trainer.accumulate_grad_batches * self.trainer.world_size
        size = batch.num_samples
        loss_text = text.weighted_loss.detach() / text.tokens.clamp(min=1)
        loss_image = image.weighted_loss.detach() / image.tokens.clamp(min=1)
        self.log_dict(
            {"train/loss_text": loss_text, "train/loss_image": loss_image,
             "train/loss": hp.lambda_text * loss_text + hp.lambda_image * loss_image},
            prog_bar=True, batch_size=size, sync_dist=True,
        )
        switch = self._switch_accuracy(text)
        if switch is not None:
            self.log("train/switch_acc", switch, batch_size=size, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        text, image = self.heads(batch, batch_idx)  # the same noise at every validation
        self.val_text.update(text.weighted_loss / text.tokens.clamp(min=1), weight=text.tokens)
        self.val_image.update(image.weighted_loss / image.tokens.clamp(min=1), weight=image.tokens)
        switch = self._switch_accuracy(text)
        size = batch.num_samples
        if switch is not None:
            self.val_switch.update(switch, weight=(text.labels == self.spec.boi_id).sum())
            self.log("val/switch_acc", self.val_switch, batch_size=size)
        self.log("val/loss_text", self.val_text, batch_size=size)
        self.log("val/loss_image", self.val_image, batch_size=size)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """FSDP clips through its own ``clip_grad_norm_`` (the norm spans every rank's shard)."""
        if gradient_clip_val and isinstance(self.trainer.strategy, FSDPStrategy):
            if gradient_clip_algorithm not in (None, "norm"):
                raise ValueError(f"gradient_clip_algorithm '{gradient_clip_algorithm}' is not supported with FSDP; use 'norm'")
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = adamw(self.parameters(), hp.lr, hp.weight_decay, tuple(hp.betas))
        total = self.trainer.estimated_stepping_batches
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, hp.warmup_steps, int(total), hp.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
