"""The ``[SEG]`` token path from the LLM to the grounding head.

The LLM's last hidden state at every ``[SEG]`` position goes to the grounding head (:class:`SAM2GroundingHead`),
which draws one mask per ``[SEG]`` on the sample's own grounding image. Any number of ``[SEG]`` per sample and per
turn; SAM2's image encoder runs once per image, batched.
"""
import torch


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
