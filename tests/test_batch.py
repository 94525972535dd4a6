"""The typed training batch: device transfer as Lightning does it, worker transport, and its setters."""

from __future__ import annotations

import pickle

import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from datamodules.sequences import SequenceDataModule
from datamodules.synthetic import SyntheticDataModule
from unigen.data.batch import TENSOR_FIELDS, Batch, collate
from unigen.data.sequence import build_example
from unigen.data.stream import to_numpy, to_tensors
from unigen.data.synthesize import synthetic_trajectories

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_batch(spec, pack_length: int | None = None, n: int = 5) -> Batch:
    trajs = synthetic_trajectories(n, spec.image.num_tokens, spec.image.codebook_size, seed=4)
    for i, traj in enumerate(trajs):
        traj.rewards = {"image": {"vqa": 0.1 * i}} if i % 2 else {}
    return collate([build_example(t, spec, "unified") for t in trajs], spec.pad_id, pack_length)


def tensors(batch: Batch) -> dict[str, torch.Tensor]:
    out = {name: getattr(batch, name) for name in TENSOR_FIELDS}
    out.update({f"rewards[{k}]": v for k, v in batch.rewards.items()})
    if batch.window_tokens is not None:
        out.update(window_text=batch.window_tokens[0], window_image=batch.window_tokens[1])
    return out


def test_lightning_moves_every_tensor_and_keeps_the_rest(module):
    batch = make_batch(module.spec, pack_length=256)
    batch.window_tokens = (torch.tensor(7), torch.tensor(9))
    batch.skipped = {"bad_json": 2}
    moved = move_data_to_device(batch, torch.device("meta"))  # what the default transfer hook calls
    assert isinstance(moved, Batch) and moved is not batch
    assert set(tensors(moved)) == set(tensors(batch)) and len(tensors(batch)) == 14  # 11 fields, 1 reward, window
    assert all(t.device.type == "meta" for t in tensors(moved).values())
    assert all(t.device.type == "cpu" for t in tensors(batch).values())  # the original is untouched
    assert (moved.keys, moved.prompt_ids, moved.packed, moved.skipped) == (
        batch.keys, batch.prompt_ids, True, {"bad_json": 2})


@pytest.mark.parametrize("device", DEVICES)
def test_packed_loss_equals_padded_loss_after_transfer(module, device):
    """Both layouts go through LightningModule.transfer_batch_to_device, then the loss heads on the device."""
    net = module.to(device)
    results = []
    for pack_length in (None, 256):
        batch = make_batch(net.spec, pack_length)
        batch.set_weights("text", torch.linspace(0.5, 1.5, batch.num_samples))
        batch.set_weights("image", torch.linspace(2.0, 0.2, batch.num_samples))
        on_device = net.transfer_batch_to_device(batch, torch.device(device), 0)
        assert on_device.input_ids.device.type == on_device.text_weight.device.type == device
        with torch.no_grad():
            results.append(net.heads(on_device))
    net.to("cpu")
    (t_pad, i_pad), (t_pack, i_pack) = results
    assert int(t_pack.tokens) == int(t_pad.tokens) > 0 and int(i_pack.tokens) == int(i_pad.tokens) > 0
    torch.testing.assert_close(t_pack.weighted_loss, t_pad.weighted_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(i_pack.weighted_loss, i_pad.weighted_loss, rtol=1e-5, atol=1e-5)


def test_worker_transport_round_trips(module):
    """DataLoader workers send numpy arrays (pickled by value); the main process gets the same batch back."""
    batch = make_batch(module.spec, pack_length=256)
    back = to_tensors(pickle.loads(pickle.dumps(to_numpy(batch))))
    assert isinstance(back, Batch) and set(tensors(back)) == set(tensors(batch))
    for name, tensor in tensors(batch).items():
        torch.testing.assert_close(tensors(back)[name], tensor, rtol=0, atol=0, equal_nan=True, msg=name)
    assert (back.keys, back.packed) == (batch.keys, batch.packed)


def test_setters_check_shapes_and_names(module):
    batch = make_batch(module.spec)
    batch.set_weights("image", torch.tensor([0.0, 1, 2, 3, 4], dtype=torch.float64))
    assert batch.image_weight.dtype == torch.float32 and batch.token_weights("image")[3].eq(3.0).all()
    with pytest.raises(ValueError, match=r"text weights have shape \(4,\), the batch has 5 samples"):
        batch.set_weights("text", torch.ones(4))
    with pytest.raises(ValueError, match="modality 'audio'"):
        batch.set_weights("audio", torch.ones(5))
    batch.set_reward("text/judge", torch.arange(5.0))
    assert batch.rewards["text/judge"].tolist() == [0, 1, 2, 3, 4] and "image/vqa" in batch.rewards
    with pytest.raises(ValueError, match="'<text|image>/<name>', got 'judge'"):
        batch.set_reward("judge", torch.ones(5))


def test_datamodules_share_the_base(module):
    """Both DataModules subclass the base: its arguments are saved with theirs, and one collate builds batches."""
    data = SyntheticDataModule(train_samples=8, val_samples=4, batch_size=4, pack_length=64)
    assert isinstance(data, SequenceDataModule)
    assert (data.hparams.batch_size, data.hparams.pack_length, data.hparams.train_samples) == (4, 64, 8)
    with pytest.raises(RuntimeError, match=r"SyntheticDataModule.connect\(spec\) must be called"):
        data.make_batch()
    data.connect(module.spec)
    with pytest.raises(ValueError, match="pack_length 64 < the model's context"):
        data.make_batch()
    with pytest.raises(ValueError, match="mode 'both'"):
        SyntheticDataModule(mode="both")
