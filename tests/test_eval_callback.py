"""The evaluation callback inside real fits of the janus-micro preset."""

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from benchmark_assets import ASSETS
from callbacks.periodic_eval import BenchmarkEvaluation
from datamodules.synthetic import SyntheticDataModule
from unigen.generation import SamplingConfig
from unigen.module import UnifiedLM

KEYS = {"eval/geneval/colors", "eval/geneval/overall", "eval/geneval/switch_rate", "eval/geneval/reasoning_tokens"}
"""color_match scores only the colors prompt; categories without any score are not logged."""


def _callback(**kw):
    return BenchmarkEvaluation({"class_path": "geneval", "init_args": {"path": str(ASSETS / "geneval_mini.jsonl")}},
                               max_prompts=5, samples_per_prompt=2,
                               sampling=SamplingConfig(max_reasoning_tokens=4), **kw)


def _data():
    return SyntheticDataModule(train_samples=8, val_samples=4, batch_size=4)


def test_callback_in_fast_dev_run_logs_expected_keys():
    callback = _callback(every_n_steps=1)
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", callbacks=[callback], enable_progress_bar=False)
    trainer.fit(UnifiedLM(model="janus-micro"), datamodule=_data())
    assert [step for step, _ in callback.history] == [1]           # at step 1; not again at fit end
    metrics = callback.history[0][1]
    assert set(metrics) == KEYS
    assert metrics["eval/geneval/overall"] == metrics["eval/geneval/colors"] in (0.0, 0.5, 1.0)
    assert 0.0 <= metrics["eval/geneval/switch_rate"] <= 1.0
    assert 0.0 <= metrics["eval/geneval/reasoning_tokens"] <= 4.0
    assert set(metrics) <= set(trainer.callback_metrics)


def test_callback_writes_scores_and_grid_to_tensorboard(tmp_path):
    callback = _callback(every_n_steps=0)
    logger = TensorBoardLogger(tmp_path, name="cb")
    trainer = L.Trainer(max_steps=2, accelerator="cpu", callbacks=[callback], logger=logger, limit_val_batches=0,
                        enable_progress_bar=False, enable_checkpointing=False)
    trainer.fit(UnifiedLM(model="janus-micro"), datamodule=_data())
    assert [step for step, _ in callback.history] == [2]           # fit end only
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0}).Reload()
    assert KEYS <= set(events.Tags()["scalars"])
    assert events.Tags()["images"] == ["eval/geneval/samples"]
    assert "eval/geneval/prompts/text_summary" in events.Tags()["tensors"]
