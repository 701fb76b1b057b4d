"""Tests of the point-sampled mask losses (Mask2Former style) against dense formulas."""
import pytest
import torch
import torch.nn.functional as F

from projects.earthmind.models.losses.mask_losses import (MaskLoss, pixel_center_coords, point_sample,
                                                   uncertain_point_coords)


def _dense_losses(pred, gt):
    bce = F.binary_cross_entropy_with_logits(pred, gt, reduction='none').flatten(1).mean(1).mean()
    probs = pred.sigmoid().flatten(1)
    target = gt.flatten(1)
    dice = (1 - (2 * (probs * target).sum(1) + 1) / (probs.sum(1) + target.sum(1) + 1)).mean()
    return bce, dice


def test_point_sample_reads_pixel_centres_exactly():
    maps = torch.randn(2, 5, 7)
    values = point_sample(maps, pixel_center_coords(2, 5, 7))
    assert torch.allclose(values, maps.flatten(1), atol=1e-6)


def test_exhaustive_sampling_equals_dense_losses_on_non_square_maps():
    torch.manual_seed(0)
    pred = torch.randn(3, 6, 9)
    gt = (torch.rand(3, 6, 9) > 0.5).float()
    losses = MaskLoss(bce_weight=2.0, dice_weight=0.5, num_points=None)(pred, gt)
    bce, dice = _dense_losses(pred, gt)
    assert torch.allclose(losses['loss_mask'], 2.0 * bce, atol=1e-5)
    assert torch.allclose(losses['loss_dice'], 0.5 * dice, atol=1e-5)


def test_list_of_images_averages_over_all_masks():
    torch.manual_seed(1)
    preds = [torch.randn(1, 4, 6), torch.randn(2, 5, 3), torch.zeros(0, 8, 8)]
    gts = [(torch.rand_like(p) > 0.5).float() for p in preds]
    losses = MaskLoss(bce_weight=1.0, dice_weight=1.0, num_points=None)(preds, gts)
    per_mask = [_dense_losses(p[i:i + 1], g[i:i + 1]) for p, g in zip(preds, gts) for i in range(p.shape[0])]
    assert torch.allclose(losses['loss_mask'], torch.stack([b for b, _ in per_mask]).mean(), atol=1e-5)
    assert torch.allclose(losses['loss_dice'], torch.stack([d for _, d in per_mask]).mean(), atol=1e-5)


def test_sampled_loss_equals_dense_on_constant_maps():
    # Every sampled point sees the same values, so the sampled losses must equal the dense ones.
    pred = torch.full((2, 16, 12), 1.5)
    gt = torch.ones(2, 16, 12)
    sampled = MaskLoss(bce_weight=1.0, dice_weight=1.0, num_points=50)(pred, gt)
    bce, _ = _dense_losses(pred, gt)
    assert torch.allclose(sampled['loss_mask'], bce, atol=1e-6)
    p = torch.sigmoid(torch.tensor(1.5))
    expected_dice = 1 - (2 * p * 50 + 1) / (p * 50 + 50 + 1)
    assert torch.allclose(sampled['loss_dice'], expected_dice, atol=1e-5)


def test_uncertainty_sampling_prefers_uncertain_region():
    logits = torch.full((1, 32, 32), 10.0)
    logits[:, :, :16] = 0.0  # the left half is maximally uncertain
    coords = uncertain_point_coords(logits, num_points=64, oversample_ratio=4, importance_sample_ratio=1.0,
                                    generator=torch.Generator().manual_seed(0))
    assert coords.shape == (1, 64, 2)
    assert (coords[0, :, 0] < 0.5).all()
    mixed = uncertain_point_coords(logits, num_points=64, oversample_ratio=4, importance_sample_ratio=0.5,
                                   generator=torch.Generator().manual_seed(0))
    assert (mixed[0, :32, 0] < 0.5).all()  # the importance part; the rest is uniform


def test_perfect_prediction_has_near_zero_dice_and_empty_target_is_defined():
    gt = torch.zeros(1, 20, 20)
    gt[:, 5:12, 4:15] = 1
    perfect = (gt * 2 - 1) * 30
    losses = MaskLoss(bce_weight=1.0, dice_weight=1.0, num_points=None)(perfect, gt)
    assert losses['loss_dice'] < 1e-3 and losses['loss_mask'] < 1e-3
    empty = torch.zeros(1, 20, 20)
    losses = MaskLoss(bce_weight=1.0, dice_weight=1.0, num_points=100)(torch.full((1, 20, 20), -30.0), empty)
    assert torch.isfinite(losses['loss_dice']) and losses['loss_dice'] < 1e-3


def test_zero_masks_give_zero_loss_with_graph():
    pred = torch.zeros(0, 8, 8, requires_grad=True)
    losses = MaskLoss()(pred, torch.zeros(0, 8, 8))
    assert losses['loss_mask'].item() == 0 and losses['loss_dice'].item() == 0
    (losses['loss_mask'] + losses['loss_dice']).backward()
    assert pred.grad is not None


def test_gradients_flow_through_sampled_points_and_shape_errors():
    pred = torch.randn(2, 10, 10, requires_grad=True)
    gt = (torch.rand(2, 10, 10) > 0.5).float()
    losses = MaskLoss(num_points=30)(pred, gt)
    (losses['loss_mask'] + losses['loss_dice']).backward()
    assert pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='same shape'):
        MaskLoss()(torch.randn(1, 4, 4), torch.zeros(1, 4, 5))
