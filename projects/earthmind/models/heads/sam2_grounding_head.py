"""SAM2 grounding head: turns LLM hidden states at ``[SEG]`` positions into masks.

The SAM2/SAM2.1 model is built by the ``sam2`` package from its own hydra configs (no vendored copy). Each projected
``[SEG]`` embedding is fed to SAM2's mask decoder as one sparse prompt token, next to the prompt encoder's
"no point, no box, no mask" outputs.

Resize convention: SAM2 (``sam2.utils.transforms.SAM2Transforms``) resizes every image to a square
``image_size x image_size`` WITHOUT keeping the aspect ratio and WITHOUT padding (unlike SAM1, which resized the longest
side and padded). Its predictor then maps mask logits back by a plain bilinear resize to the original ``(H, W)``. This
head follows the same convention both ways, so masks line up with the image pixels for non-square images too.
"""
import contextlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from projects.earthmind.registry import MODELS

# SAM2's image normalisation (ImageNet statistics on 0-1 RGB), as in sam2.utils.transforms.SAM2Transforms.
SAM2_MEAN = (0.485, 0.456, 0.406)
SAM2_STD = (0.229, 0.224, 0.225)


@MODELS.register_module()
class SAM2GroundingHead(nn.Module):
    """SAM2 image encoder + mask decoder driven by projected ``[SEG]`` hidden states.

    Args:
        config_name: ``sam2`` package config, e.g. ``'configs/sam2.1/sam2.1_hiera_t.yaml'``.
        llm_hidden_size: Hidden size of the LLM whose ``[SEG]`` states are projected.
        hydra_overrides: Extra hydra overrides passed to ``sam2.build_sam.build_sam2`` (e.g. a tiny trunk and a
            small ``++model.image_size`` for CPU runs).
        checkpoint: Optional local path to an official SAM2 checkpoint ``{"model": state_dict}``.
        freeze_image_encoder: Freeze SAM2's image encoder (trunk + FPN neck) and run it without gradients.
        train_mask_decoder: Train SAM2's mask decoder (including its high-resolution feature convolutions).
            The prompt encoder and all video-memory modules stay frozen.
    """

    def __init__(self,
                 config_name: str,
                 llm_hidden_size: int,
                 hydra_overrides: Optional[Sequence[str]] = None,
                 checkpoint: Optional[str] = None,
                 freeze_image_encoder: bool = True,
                 train_mask_decoder: bool = True):
        super().__init__()
        from sam2.build_sam import build_sam2

        self.init_args = dict(config_name=config_name, hydra_overrides=list(hydra_overrides or []),
                           freeze_image_encoder=freeze_image_encoder, train_mask_decoder=train_mask_decoder)

        self.sam2 = build_sam2(
            config_name,
            ckpt_path=None,
            device='cpu',
            mode='train',
            hydra_overrides_extra=list(hydra_overrides or []),
            apply_postprocessing=False)
        if checkpoint is not None:
            self.load_sam2_checkpoint(checkpoint)
        self.image_size = int(self.sam2.image_size)
        self.prompt_dim = int(self.sam2.sam_prompt_embed_dim)
        self.freeze_image_encoder = freeze_image_encoder
        self.text_to_prompt = nn.Sequential(
            nn.Linear(llm_hidden_size, llm_hidden_size),
            nn.ReLU(inplace=True),
            nn.Linear(llm_hidden_size, self.prompt_dim),
        )

        self.sam2.requires_grad_(False)
        if not freeze_image_encoder:
            self.sam2.image_encoder.requires_grad_(True)
        if train_mask_decoder:
            self.sam2.sam_mask_decoder.requires_grad_(True)

    def config_dict(self):
        """Constructor arguments (but ``llm_hidden_size`` and ``checkpoint``) that rebuild this head."""
        return dict(self.init_args)

    def load_sam2_checkpoint(self, path: str) -> None:
        """Load an official SAM2 checkpoint (``{"model": state_dict}``) into the SAM2 model.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: the file has no ``"model"`` dict, or its keys do not match the SAM2 model built from the
                config (missing and unexpected keys are listed).
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f'SAM2 checkpoint not found: {path}')
        payload = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(payload, dict) or not isinstance(payload.get('model'), dict):
            raise ValueError(f'SAM2 checkpoint {path} is not of the form {{"model": state_dict}}')
        state_dict = payload['model']
        expected = set(self.sam2.state_dict().keys())
        missing = sorted(expected - state_dict.keys())
        unexpected = sorted(state_dict.keys() - expected)
        if missing or unexpected:
            raise ValueError(f'SAM2 checkpoint {path} does not match the model built from the config: '
                             f'missing keys {missing}, unexpected keys {unexpected}')
        self.sam2.load_state_dict(state_dict, strict=True)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """Resize one 0-1 RGB image ``[3, H, W]`` to SAM2's square input and normalise it.

        The resize squashes the image to ``image_size x image_size`` (SAM2's convention, no padding).
        """
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f'expected an RGB image [3, H, W], got shape {tuple(image.shape)}')
        resized = F.interpolate(
            image[None].float(), size=(self.image_size, self.image_size), mode='bilinear', align_corners=False,
            antialias=True)[0]
        mean = resized.new_tensor(SAM2_MEAN)[:, None, None]
        std = resized.new_tensor(SAM2_STD)[:, None, None]
        return (resized - mean) / std

    def encode_images(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run SAM2's image encoder once per image (batched).

        Args:
            images: ``[B, 3, S, S]`` preprocessed images with ``S == image_size`` (see :meth:`preprocess`).

        Returns:
            dict with ``image_embed`` ``[B, C, S/16, S/16]`` (with SAM2's ``no_mem_embed`` added, as for a single
            image) and ``high_res_feats``: the two higher-resolution maps for the mask decoder (or an empty list
            when the config does not use them).
        """
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f'encode_images expects [B, 3, {self.image_size}, {self.image_size}], '
                             f'got {tuple(images.shape)}')
        images = images.to(self.text_to_prompt[0].weight.dtype)
        with self._autocast(images.device):
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_image_encoder):
                backbone_out = self.sam2.image_encoder(images)
            fpn = backbone_out['backbone_fpn'][-self.sam2.num_feature_levels:]
            image_embed = fpn[-1]
            if self.sam2.directly_add_no_mem_embed:
                image_embed = image_embed + self.sam2.no_mem_embed.view(1, -1, 1, 1)
            high_res_feats = []
            if self.sam2.use_high_res_features_in_sam:
                decoder = self.sam2.sam_mask_decoder
                high_res_feats = [decoder.conv_s0(fpn[0]), decoder.conv_s1(fpn[1])]
        return dict(image_embed=image_embed, high_res_feats=high_res_feats)

    def _autocast(self, device):
        """Autocast to the weights' dtype when they are bf16/fp16: SAM2 builds float32 grids and positional
        encodings inside its modules, which would meet half-precision weights (e.g. under DeepSpeed bf16)."""
        dtype = self.text_to_prompt[0].weight.dtype
        if dtype in (torch.bfloat16, torch.float16):
            return torch.autocast(device_type=device.type, dtype=dtype)
        return contextlib.nullcontext()

    def zero_with_trainable_params(self, reference: torch.Tensor) -> torch.Tensor:
        """0 times every trainable parameter, so each call reaches the same parameters (DDP/ZeRO)."""
        total = reference.new_zeros(())
        for param in self.parameters():
            if param.requires_grad:
                total = total + param.sum() * 0
        return total

    def forward(self, image_features: Dict[str, torch.Tensor], seg_embeddings_per_image: List[torch.Tensor],
                output_sizes: List[Tuple[int, int]]) -> List[torch.Tensor]:
        """Predict one mask per ``[SEG]`` embedding.

        Args:
            image_features: Output of :meth:`encode_images` for B images.
            seg_embeddings_per_image: B tensors ``[N_i, llm_hidden_size]`` (``N_i`` may be 0).
            output_sizes: B original image sizes ``(H_i, W_i)``.

        Returns:
            B tensors of mask logits ``[N_i, H_i, W_i]`` at the original image size. SAM2's object-score gating
            (logits forced to -1024 when the decoder predicts "no object") is a video-tracking device and is not
            applied: every ``[SEG]`` yields trainable logits.
        """
        image_embed = image_features['image_embed']
        num_images = image_embed.shape[0]
        if len(seg_embeddings_per_image) != num_images or len(output_sizes) != num_images:
            raise ValueError(f'got features for {num_images} images but {len(seg_embeddings_per_image)} '
                             f'[SEG] embedding groups and {len(output_sizes)} output sizes')
        with self._autocast(image_embed.device):
            return self._decode(image_features, seg_embeddings_per_image, output_sizes)

    def _decode(self, image_features, seg_embeddings_per_image, output_sizes):
        image_embed = image_features['image_embed']
        zero = self.zero_with_trainable_params(image_embed)
        pe = self.sam2.sam_prompt_encoder.get_dense_pe()
        _, no_mask_dense = self.sam2.sam_prompt_encoder(points=None, boxes=None, masks=None)
        outputs = []
        for index, (seg, size) in enumerate(zip(seg_embeddings_per_image, output_sizes)):
            height, width = int(size[0]), int(size[1])
            if seg.dim() != 2:
                raise ValueError(f'image {index}: [SEG] embeddings must be [N, hidden], got {tuple(seg.shape)}')
            num_masks = seg.shape[0]
            if num_masks == 0:
                outputs.append(image_embed.new_zeros((0, height, width)) + zero)
                continue
            sparse = self.text_to_prompt(seg.to(self.text_to_prompt[0].weight.dtype))[:, None, :]
            high_res = [feat[index:index + 1].expand(num_masks, -1, -1, -1)
                        for feat in image_features['high_res_feats']] or None
            low_res, _, _, _ = self.sam2.sam_mask_decoder(
                image_embeddings=image_embed[index:index + 1].expand(num_masks, -1, -1, -1),
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=no_mask_dense.expand(num_masks, -1, -1, -1),
                multimask_output=False,
                repeat_image=False,
                high_res_features=high_res)
            # Undo SAM2's square squash: a plain bilinear resize to the original (H, W), as SAM2's predictor does.
            masks = F.interpolate(low_res.float(), size=(height, width), mode='bilinear', align_corners=False)
            outputs.append(masks[:, 0] + zero)
        return outputs
