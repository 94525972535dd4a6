"""Loss heads: masking, per-sample weighting, invariance to how a batch is split."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from unigen.losses import IGNORE, combine, weighted_token_ce


def identity_head(h: torch.Tensor) -> torch.Tensor:
    return h


def test_ce_matches_hand_computed_value_and_ignores_unsupervised_positions():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [9.0, -9.0, 3.0]]])
    labels = torch.tensor([[0, IGNORE, 2]])
    out = weighted_token_ce(identity_head, logits, labels, torch.ones(1, 3))
    expected = -math.log(math.exp(2) / (math.exp(2) + 2)) + -math.log(math.exp(3) / (math.exp(9) + math.exp(-9) + math.exp(3)))
    assert out.tokens.item() == 2
    assert abs(out.weighted_loss.item() - expected) < 1e-5
    # Changing logits where nothing is supervised changes nothing.
    logits[0, 1] = torch.tensor([50.0, -50.0, 7.0])
    assert abs(weighted_token_ce(identity_head, logits, labels, torch.ones(1, 3)).weighted_loss.item() - expected) < 1e-5


def test_per_sample_weights_scale_each_sample_contribution():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    labels = torch.randint(0, 5, (2, 4))
    per_token = F.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), reduction="none").view(2, 4)
    weights = torch.tensor([0.0, 3.0])[:, None].expand(2, 4)
    out = weighted_token_ce(identity_head, logits, labels, weights)
    assert torch.allclose(out.weighted_loss, 3.0 * per_token[1].sum())
    assert out.tokens.item() == 8  # the count is unweighted


def test_predictions_only_when_asked_and_the_same_in_chunks():
    torch.manual_seed(0)
    hidden = torch.randn(2, 9, 6, requires_grad=True)
    labels = torch.randint(0, 6, (2, 9))
    labels[0, :3] = IGNORE
    weights = torch.ones(2, 9)
    assert weighted_token_ce(identity_head, hidden, labels, weights).predictions is None
    whole = weighted_token_ce(identity_head, hidden, labels, weights, keep_predictions=True)
    chunked = weighted_token_ce(identity_head, hidden, labels, weights, chunk_size=4, keep_predictions=True)
    expected = hidden[labels != IGNORE].argmax(-1)
    assert torch.equal(whole.predictions, expected) and torch.equal(chunked.predictions, expected)
    assert torch.allclose(whole.weighted_loss, chunked.weighted_loss)
    lean = weighted_token_ce(identity_head, hidden, labels, weights, chunk_size=4)
    lean.weighted_loss.backward()  # checkpointed chunks that return no predictions still backprop
    assert hidden.grad is not None and hidden.grad[0, :3].abs().sum() == 0


def test_loss_is_invariant_to_splitting_the_batch():
    """Sum of per-part losses, each normalised by the *global* counts, equals the whole-batch loss."""
    torch.manual_seed(1)
    hidden = torch.randn(6, 7, 4)
    text_labels = torch.randint(0, 4, (6, 7)).masked_fill(torch.rand(6, 7) < 0.5, IGNORE)
    image_labels = torch.randint(0, 4, (6, 7)).masked_fill(torch.rand(6, 7) < 0.3, IGNORE)
    weights = torch.rand(6, 1).expand(6, 7)

    def heads(rows):
        t = weighted_token_ce(identity_head, hidden[rows], text_labels[rows], weights[rows])
        i = weighted_token_ce(identity_head, hidden[rows], image_labels[rows], weights[rows])
        return t, i

    t, i = heads(slice(0, 6))
    whole = combine(t, i, t.tokens, i.tokens, 0.7, 1.3)
    parts = [heads(slice(0, 1)), heads(slice(1, 4)), heads(slice(4, 6))]
    n_text = sum(p[0].tokens for p in parts)
    n_image = sum(p[1].tokens for p in parts)
    split = sum(combine(pt, pi, n_text, n_image, 0.7, 1.3) for pt, pi in parts)
    assert torch.allclose(whole, split, atol=1e-6)
    # Normalising each part by its own count (the naive way) gives a different number.
    naive = sum(combine(pt, pi, pt.tokens, pi.tokens, 0.7, 1.3) for pt, pi in parts) / 3
    assert not torch.allclose(whole, naive, atol=1e-3)
