"""The ``[SEG]`` and ``<VP_CONTEXT>`` token paths between the LLM and the image.

- ``[SEG]``: the LLM's last hidden state at every ``[SEG]`` position goes to the grounding head
  (:class:`SAM2GroundingHead`), which draws one mask per ``[SEG]`` on the sample's own grounding image. Any number of
  ``[SEG]`` per sample and per turn; SAM2's image encoder runs once per image, batched.
- ``<VP_CONTEXT>``: a region prompt. Its input embedding is the mean of the sample's visual tokens weighted by how
  much of each token's ground the region covers (:func:`visual_token_coverage`).
"""
import torch

from .visual_token_regions import visual_token_coverage


def token_positions(input_ids, token_id):
    """Positions of ``token_id`` in each row of ``input_ids`` ``[B, L]``: a list of ``B`` LongTensors."""
    return [(row == token_id).nonzero(as_tuple=True)[0] for row in input_ids]


def run_grounding_head(head, hidden, seg_positions, grounding_images, names):
    """Masks logits for every ``[SEG]`` of a batch.

    Args:
        head (SAM2GroundingHead): The grounding head.
        hidden (Tensor): ``[B, L, hidden]`` last hidden states of the LLM.
        seg_positions (list[Tensor]): Per sample positions of its ``[SEG]`` tokens.
        grounding_images (list[Tensor | None] | None): Per sample 0-1 RGB ``[3, H, W]`` (None: no image).
        names (list[str]): Sample names for errors.

    Returns:
        list[Tensor | None]: Per sample mask logits ``[N_b, H_b, W_b]`` (None for samples without a grounding
        image). All None when the batch has no grounding image at all.

    Raises:
        ValueError: A sample has ``[SEG]`` tokens but no grounding image.
    """
    images = list(grounding_images) if grounding_images is not None else [None] * len(seg_positions)
    if len(images) != len(seg_positions):
        raise ValueError(f'{len(images)} grounding images for a batch of {len(seg_positions)} samples')
    for b, positions in enumerate(seg_positions):
        if len(positions) and images[b] is None:
            raise ValueError(f'{names[b]}: {len(positions)} [SEG] tokens but no grounding image (the pipeline needs '
                             'MakeGroundingImage)')
    present = [b for b, image in enumerate(images) if image is not None]
    outputs = [None] * len(images)
    if not present:
        return outputs
    device = hidden.device
    batch = torch.stack([head.preprocess(images[b].to(device)) for b in present])
    features = head.encode_images(batch)
    logits = head(features, [hidden[b, seg_positions[b]] for b in present],
                  [tuple(images[b].shape[-2:]) for b in present])
    for b, sample_logits in zip(present, logits):
        outputs[b] = sample_logits
    return outputs


def check_mask_targets(logits, gt_masks, names):
    """Pair predicted and target masks per sample; a count or size difference is an error naming the sample.

    Returns:
        tuple[list[Tensor], list[Tensor]]: Predictions and float targets of the samples that have predictions.
    """
    targets = list(gt_masks) if gt_masks is not None else [None] * len(logits)
    preds, gts = [], []
    for b, pred in enumerate(logits):
        if pred is None:
            continue
        target = targets[b]
        count = 0 if target is None else target.shape[0]
        if count != pred.shape[0]:
            raise ValueError(f'{names[b]}: {pred.shape[0]} [SEG] tokens but {count} target masks')
        if target is None:
            continue
        if tuple(target.shape[-2:]) != tuple(pred.shape[-2:]):
            raise ValueError(f'{names[b]}: target masks are {tuple(target.shape[-2:])} but the grounding image is '
                             f'{tuple(pred.shape[-2:])}')
        preds.append(pred)
        gts.append(target.to(device=pred.device, dtype=pred.dtype))
    return preds, gts


def pool_region_prompts(embeds, input_ids, vp_token_id, visual_per_sample, region_masks, tile_grids, tokens_per_tile,
                        names):
    """Write each region prompt's pooled visual feature at its ``<VP_CONTEXT>`` position.

    Args:
        embeds (Tensor): ``[B, L, hidden]`` input embeddings (visual tokens already written).
        input_ids (Tensor): ``[B, L]``.
        vp_token_id (int | None): Id of ``<VP_CONTEXT>`` (None: the tokenizer has no region prompts).
        visual_per_sample (list[Tensor]): Per sample ``[V_b, hidden]`` visual tokens.
        region_masks (list[Tensor | None] | None): Per sample ``[R_b, H, W]`` region masks.
        tile_grids (list): Per sample ``(rows, cols, has_thumbnail)``.
        tokens_per_tile (int): Visual tokens per tile.
        names (list[str]): Sample names for errors.

    Returns:
        Tensor: The embeddings with region features written.
    """
    if vp_token_id is None:
        if region_masks is not None and any(m is not None and len(m) for m in region_masks):
            raise ValueError('the batch has region prompts but the tokenizer has no <VP_CONTEXT> token: add it to '
                             'extra_special_tokens')
        return embeds
    positions = token_positions(input_ids, vp_token_id)
    masks = list(region_masks) if region_masks is not None else [None] * len(positions)
    rows = []
    for b, sample_positions in enumerate(positions):
        count = 0 if masks[b] is None else masks[b].shape[0]
        if count != len(sample_positions):
            raise ValueError(f'{names[b]}: {len(sample_positions)} <VP_CONTEXT> tokens but {count} region masks')
        if not count:
            rows.append(embeds[b])
            continue
        visual = visual_per_sample[b]
        if not len(visual):
            raise ValueError(f'{names[b]}: region prompts need an image')
        if tile_grids[b] is None:
            raise ValueError(f'{names[b]}: region prompts need meta["tile_grid"] from the tiling step')
        weights = torch.stack([
            visual_token_coverage(mask, tile_grids[b], tokens_per_tile, len(visual)) for mask in masks[b]
        ]).to(device=visual.device, dtype=visual.dtype)
        empty = (weights.sum(dim=1) == 0).nonzero(as_tuple=True)[0]
        if len(empty):
            raise ValueError(f'{names[b]}: region prompts {empty.tolist()} cover none of the image')
        pooled = (weights @ visual) / weights.sum(dim=1, keepdim=True)
        row = embeds[b].clone()
        row[sample_positions] = pooled.to(row.dtype)
        rows.append(row)
    return torch.stack(rows)
