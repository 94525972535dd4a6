"""The weights reach the loss heads: a zero-weighted sample contributes no gradient (real UnifiedLM, janus-micro)."""

import torch

from callbacks.reward_weighting import apply_weights
from unigen.data.synthesize import synthetic_trajectories
from unigen.data.batch import collate
from unigen.data.sequence import build_example
from unigen.module import UnifiedLM
from unigen.rewards.weighting import ModalityWeighting


def _grads(module: UnifiedLM, batch: dict) -> dict[str, torch.Tensor]:
    module.zero_grad()
    text, image = module.heads(batch)
    (text.weighted_loss + image.weighted_loss).backward()
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def test_zero_weighted_sample_contributes_no_gradient():
    torch.manual_seed(0)
    module = UnifiedLM(model="janus-micro")
    module.configure_model()
    spec = module.spec
    trajs = synthetic_trajectories(3, spec.image.num_tokens, spec.image.codebook_size, seed=1)
    for traj, value in zip(trajs, [0.9, 0.7, 0.1]):
        traj.rewards = {"image": {"vqa": value}, "text": {"vqa": value}}
    examples = [build_example(t, spec, "unified") for t in trajs]

    weighted = collate(examples, spec.pad_id)
    filt = ModalityWeighting(scheme="filter", rewards={"image/vqa": 1.0}, threshold=0.5)
    apply_weights(weighted, ModalityWeighting(scheme="filter", rewards={"text/vqa": 1.0}, threshold=0.5), filt)
    assert weighted.image_weight.tolist() == [1.0, 1.0, 0.0]

    with_zero = _grads(module, weighted)
    without = _grads(module, collate(examples[:2], spec.pad_id))
    unweighted = _grads(module, collate(examples, spec.pad_id))
    assert with_zero.keys() == without.keys() and len(without) > 5
    for name in without:
        torch.testing.assert_close(with_zero[name], without[name], atol=1e-6, rtol=1e-4, msg=name)
    moved = max(float((unweighted[n] - without[n]).abs().max()) for n in without)
    assert moved > 1e-4  # the third sample does move parameters when it is not zero-weighted


def test_fractional_weight_scales_that_samples_gradient():
    torch.manual_seed(0)
    module = UnifiedLM(model="janus-micro")
    module.configure_model()
    spec = module.spec
    example = build_example(synthetic_trajectories(1, spec.image.num_tokens, spec.image.codebook_size, 2)[0], spec, "unified")
    batch = collate([example], spec.pad_id)
    full = _grads(module, batch)
    batch.set_weights("text", torch.tensor([0.25]))
    batch.set_weights("image", torch.tensor([0.25]))
    quarter = _grads(module, batch)
    for name in full:
        torch.testing.assert_close(quarter[name], 0.25 * full[name], atol=1e-7, rtol=1e-4)
