"""Mask losses on uncertainty-sampled points (Mask2Former style), written on ``torch.nn.functional.grid_sample``.

Instead of every pixel, the losses are computed on ``num_points`` points per mask: ``oversample_ratio * num_points``
random candidates are scored by uncertainty (``-|logit|``), the ``importance_sample_ratio`` most uncertain are kept
and the rest of the points are drawn uniformly at random. Targets are read at the same points (bilinear).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from projects.earthmind.registry import MODELS


def point_sample(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly read ``maps`` ``[N, H, W]`` at ``coords`` ``[N, P, 2]`` given as (x, y) in [0, 1].

    Uses ``align_corners=False``: (x, y) = ((j + 0.5) / W, (i + 0.5) / H) reads pixel (i, j) exactly. Points within
    half a pixel of the border repeat the edge pixel (``padding_mode='border'``) rather than blending in zeros.

    Returns:
        ``[N, P]`` sampled values.
    """
    grid = (2.0 * coords - 1.0)[:, :, None, :].to(maps.dtype)
    return F.grid_sample(maps[:, None], grid, mode='bilinear', padding_mode='border',
                         align_corners=False)[:, 0, :, 0]


def pixel_center_coords(num_masks: int, height: int, width: int, device=None) -> torch.Tensor:
    """Coordinates of every pixel centre, ``[num_masks, height * width, 2]``, in row-major order."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    coords = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)
    return coords[None].expand(num_masks, -1, -1)


@torch.no_grad()
def uncertain_point_coords(logits: torch.Tensor, num_points: int, oversample_ratio: float,
                           importance_sample_ratio: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Choose ``num_points`` points per mask, favouring the most uncertain logits.

    Args:
        logits: ``[N, H, W]`` mask logits.
        num_points: Points per mask.
        oversample_ratio: Candidates drawn = ``oversample_ratio * num_points`` (must be >= 1).
        importance_sample_ratio: Fraction of the points taken from the most uncertain candidates; the rest are
            uniformly random.
        generator: Optional random generator.

    Returns:
        ``[N, num_points, 2]`` (x, y) coordinates in [0, 1].
    """
    if oversample_ratio < 1:
        raise ValueError(f'oversample_ratio must be >= 1, got {oversample_ratio}')
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f'importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}')
    num_masks = logits.shape[0]
    num_candidates = int(num_points * oversample_ratio)
    candidates = torch.rand(num_masks, num_candidates, 2, device=logits.device, generator=generator)
    uncertainty = -point_sample(logits.float(), candidates).abs()
    num_uncertain = int(importance_sample_ratio * num_points)
    top = uncertainty.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top[:, :, None].expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        randoms = torch.rand(num_masks, num_random, 2, device=logits.device, generator=generator)
        chosen = torch.cat([chosen, randoms], dim=1)
    return chosen


def sigmoid_bce_per_mask(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean sigmoid binary cross-entropy per mask: ``[N, P]`` logits and targets -> ``[N]``."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction='none').mean(dim=1)


def dice_per_mask(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Dice loss ``1 - (2 |p t| + s) / (|p| + |t| + s)`` per mask: ``[N, P]`` logits and targets -> ``[N]``.

    The smoothing term ``s`` keeps an empty target well defined (loss -> 0 as the prediction empties).
    """
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(dim=1) + smooth
    denominator = probs.sum(dim=1) + targets.sum(dim=1) + smooth
    return 1 - numerator / denominator


@MODELS.register_module()
class MaskLoss(nn.Module):
    """Weighted sigmoid BCE + Dice on uncertainty-sampled points, averaged over all masks of a batch.

    Args:
        bce_weight: Weight of the BCE term.
        dice_weight: Weight of the Dice term.
        num_points: Points per mask; ``None`` uses every pixel centre (exact dense losses).
        oversample_ratio: Candidates per point for the uncertainty ranking.
        importance_sample_ratio: Fraction of points chosen by uncertainty (the rest uniformly at random).
    """

    def __init__(self, bce_weight: float = 2.0, dice_weight: float = 0.5, num_points: Optional[int] = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75):
        super().__init__()
        if num_points is not None and num_points <= 0:
            raise ValueError(f'num_points must be positive or None, got {num_points}')
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def _sample(self, pred: torch.Tensor, target: torch.Tensor):
        if self.num_points is None:
            coords = pixel_center_coords(pred.shape[0], pred.shape[1], pred.shape[2], device=pred.device)
        else:
            coords = uncertain_point_coords(pred, self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio)
        return point_sample(pred, coords), point_sample(target.to(pred.dtype), coords)

    def forward(self, pred_masks: Union[torch.Tensor, Sequence[torch.Tensor]],
                gt_masks: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            pred_masks: Mask logits ``[N, H, W]``, or a list of them (one per image; sizes may differ).
            gt_masks: Binary (or soft) targets of the same shapes.

        Returns:
            dict with ``loss_mask`` (weighted BCE) and ``loss_dice`` (weighted Dice); both 0 with a graph to the
            predictions when there is no mask at all.
        """
        preds: List[torch.Tensor] = [pred_masks] if torch.is_tensor(pred_masks) else list(pred_masks)
        gts: List[torch.Tensor] = [gt_masks] if torch.is_tensor(gt_masks) else list(gt_masks)
        if len(preds) != len(gts):
            raise ValueError(f'{len(preds)} prediction groups but {len(gts)} target groups')
        if not preds:
            raise ValueError('MaskLoss needs at least one (possibly empty) prediction tensor')
        bce_terms, dice_terms = [], []
        zero = sum(pred.sum() * 0 for pred in preds)
        for index, (pred, gt) in enumerate(zip(preds, gts)):
            if pred.dim() != 3 or pred.shape != gt.shape:
                raise ValueError(f'group {index}: predictions {tuple(pred.shape)} and targets {tuple(gt.shape)} '
                                 'must both be [N, H, W] with the same shape')
            if pred.shape[0] == 0:
                continue
            pred_points, gt_points = self._sample(pred, gt)
            bce_terms.append(sigmoid_bce_per_mask(pred_points, gt_points))
            dice_terms.append(dice_per_mask(pred_points, gt_points))
        if not bce_terms:
            return dict(loss_mask=zero, loss_dice=zero)
        bce = torch.cat(bce_terms).mean()
        dice = torch.cat(dice_terms).mean()
        return dict(loss_mask=self.bce_weight * bce + zero, loss_dice=self.dice_weight * dice + zero)
