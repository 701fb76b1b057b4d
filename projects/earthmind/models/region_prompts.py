"""Region prompts: each ``<VP_CONTEXT>`` token's input embedding is the region's pooled visual feature.

The embedding is the mean of the sample's visual tokens weighted by how much of each token's ground the region
covers (:func:`visual_token_coverage`), so the LLM reads "this region" in its own visual vocabulary.
"""
import torch

from projects.earthmind.structures.visual_token_regions import visual_token_coverage

from .heads.seg_token_path import token_positions


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
            raise ValueError('the batch has region prompts but the model has no <VP_CONTEXT> token')
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
