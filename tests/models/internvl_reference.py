"""A test-only reference forward of the published InternVL chat model, in plain PyTorch.

Written from the published architecture (OpenGVLab's ``modeling_intern_vit.py`` / ``modeling_internvl_chat.py``,
which EarthDial, EarthMind and Sa2VA all reuse) and independent of the toolkit's model code: it reads a folder's
``config.json`` and safetensors and runs

1. InternViT: conv patch embedding, class token, position embedding (the patch part bicubic-resized to the input
   grid, ``align_corners=False``), ``num_hidden_layers`` pre-norm layers
   ``x + ls1 * attn(norm1(x))``, ``x + ls2 * mlp(norm2(x))`` with fused ``qkv`` attention, optional qk RMS-norm
   over the full width, ``layer_norm`` or ``rms_norm`` (the latter in float32); no final norm;
2. ``select_layer`` (-1: the last layer's output; else ``hidden_states[select_layer]`` with the embedding output
   as ``hidden_states[0]``), the class token dropped;
3. InternVL's ``pixel_shuffle`` (``ps_version`` ``'v2'`` swaps height and width back; ``'v1'`` does not);
4. ``mlp1``: LayerNorm, Linear, GELU, Linear;
5. the input embeddings of the HF causal LM built from ``llm_config`` (transformers' own Qwen2/Phi-3/Llama classes),
   with the embeddings at ``<IMG_CONTEXT>`` positions replaced by the visual tokens in order, then the LM forward.

EarthDial's way of feeding more than three bands (``InternVLChatModel.sequential_vit_features``: every 3-channel
group through the ViT, the last group padded by repeating its last channel, the CLS-dropped tokens of the groups
then pooled) is given by :meth:`InternVLReference.band_group_tokens` for the ``average`` mode.
"""
import json
import math
import os.path as osp

import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM


def read_folder_tensors(folder):
    """All tensors of a folder's ``model.safetensors`` or index-listed shards, as ``{name: tensor}``."""
    index = osp.join(folder, 'model.safetensors.index.json')
    if osp.isfile(index):
        with open(index, encoding='utf-8') as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
    else:
        files = ['model.safetensors']
    tensors = {}
    for name in files:
        with safe_open(osp.join(folder, name), framework='pt') as f:
            tensors.update({k: f.get_tensor(k) for k in f.keys()})
    return tensors


def _norm(x, w, b, norm_type, eps):
    if norm_type == 'rms_norm':
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
        return w * x32.to(dtype)
    return F.layer_norm(x, (x.shape[-1], ), w, b, eps)


def _rms(x, w, eps):
    return _norm(x, w, None, 'rms_norm', eps)


def pixel_shuffle(x, scale_factor=0.5, ps_version='v2'):
    """InternVL's pixel shuffle of ``[N, W, H, C]`` tokens."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
    if ps_version != 'v1':
        x = x.permute(0, 2, 1, 3).contiguous()
    return x


class InternVLReference:
    """The InternVL chat model of a checkpoint folder, run by hand from its tensors.

    Args:
        folder (str): Folder with ``config.json`` and safetensors in the InternVL layout.
        dtype (torch.dtype): Compute dtype (float32 for exact comparisons).
    """

    def __init__(self, folder, dtype=torch.float32):
        with open(osp.join(folder, 'config.json'), encoding='utf-8') as f:
            self.config = json.load(f)
        self.vcfg = self.config['vision_config']
        self.dtype = dtype
        tensors = read_folder_tensors(folder)
        self.vit = {k[len('vision_model.'):]: v.to(dtype) for k, v in tensors.items() if k.startswith('vision_model.')}
        self.mlp1 = {k[len('mlp1.'):]: v.to(dtype) for k, v in tensors.items() if k.startswith('mlp1.')}
        llm_cfg = dict(self.config['llm_config'])
        model_type = llm_cfg.pop('model_type')
        for key in ('architectures', 'auto_map', '_name_or_path', 'transformers_version', 'attn_implementation',
                    'torch_dtype', 'use_flash_attn'):
            llm_cfg.pop(key, None)
        hf_config = AutoConfig.for_model(model_type, **llm_cfg)
        hf_config._attn_implementation = 'eager'
        self.llm = AutoModelForCausalLM.from_config(hf_config, torch_dtype=dtype).eval()
        llm_state = {k[len('language_model.'):]: v for k, v in tensors.items() if k.startswith('language_model.')}
        missing, unexpected = self.llm.load_state_dict(llm_state, strict=False)
        missing = [k for k in missing if not (k == 'lm_head.weight' and hf_config.tie_word_embeddings)]
        if missing or unexpected:
            raise KeyError(f'reference LLM: missing {missing}, unexpected {unexpected}')
        self.downsample_ratio = self.config.get('downsample_ratio', 0.5)
        self.select_layer = self.config.get('select_layer', -1)
        self.ps_version = self.config.get('ps_version', 'v1')

    # --- InternViT ---------------------------------------------------------------------------------------------
    def _embeddings(self, pixel_values):
        p = self.vit
        patch = self.vcfg['patch_size']
        x = F.conv2d(pixel_values.to(self.dtype), p['embeddings.patch_embedding.weight'],
                     p['embeddings.patch_embedding.bias'], stride=patch)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = p['embeddings.class_embedding'].expand(b, 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = p['embeddings.position_embedding']
        side = self.vcfg['image_size'] // patch
        grid = pos[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False)
        grid = grid.reshape(1, -1, h * w).permute(0, 2, 1).to(self.dtype)
        return x + torch.cat([pos[:, :1], grid], dim=1)

    def _layer(self, i, x):
        p = {k[len(f'encoder.layers.{i}.'):]: v for k, v in self.vit.items() if k.startswith(f'encoder.layers.{i}.')}
        norm_type = self.vcfg.get('norm_type', 'rms_norm')
        eps = self.vcfg.get('layer_norm_eps', 1e-6)
        heads = self.vcfg['num_attention_heads']
        b, n, c = x.shape
        hd = c // heads
        h = _norm(x, p['norm1.weight'], p.get('norm1.bias'), norm_type, eps)
        qkv = F.linear(h, p['attn.qkv.weight'], p.get('attn.qkv.bias'))
        q, k, v = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        if self.vcfg.get('qk_normalization', False):
            q = _rms(q.transpose(1, 2).flatten(-2, -1), p['attn.q_norm.weight'], eps)
            k = _rms(k.transpose(1, 2).flatten(-2, -1), p['attn.k_norm.weight'], eps)
            q = q.view(b, n, heads, hd).transpose(1, 2)
            k = k.view(b, n, heads, hd).transpose(1, 2)
        attn = ((q * hd**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        out = F.linear(out, p['attn.proj.weight'], p['attn.proj.bias'])
        x = x + out * p['ls1']
        h = _norm(x, p['norm2.weight'], p.get('norm2.bias'), norm_type, eps)
        h = F.linear(F.gelu(F.linear(h, p['mlp.fc1.weight'], p['mlp.fc1.bias'])), p['mlp.fc2.weight'],
                     p['mlp.fc2.bias'])
        return x + h * p['ls2']

    @torch.no_grad()
    def vit_hidden_states(self, pixel_values):
        """``[embeddings, layer 1, ..., layer L]`` outputs of InternViT, each ``[B, 1 + P, C]``."""
        states = [self._embeddings(pixel_values)]
        for i in range(self.vcfg['num_hidden_layers']):
            states.append(self._layer(i, states[-1]))
        return states

    @torch.no_grad()
    def vit_tokens(self, pixel_values):
        """Patch tokens (class token dropped) of the layer ``select_layer`` names, ``[B, P, C]``."""
        states = self.vit_hidden_states(pixel_values)
        return states[-1 if self.select_layer == -1 else self.select_layer][:, 1:]

    @torch.no_grad()
    def band_group_tokens(self, pixel_values, mode='average'):
        """EarthDial's ``sequential_vit_features`` for ``[B, K, H, W]`` inputs of ``K`` bands: every 3-band group
        through the ViT (a short last group padded with its last band), pooled over the groups; ``[B, P, C]``."""
        groups = []
        for start in range(0, pixel_values.shape[1], 3):
            subset = pixel_values[:, start:start + 3]
            if subset.shape[1] < 3:
                subset = torch.cat([subset] + [subset[:, -1:]] * (3 - subset.shape[1]), dim=1)
            groups.append(self.vit_tokens(subset))
        stacked = torch.stack(groups)
        if mode == 'average':
            return stacked.mean(dim=0)
        if mode == 'sum':
            return stacked.sum(dim=0)
        raise ValueError(f'unsupported pooling mode {mode!r}')

    # --- projector and LLM --------------------------------------------------------------------------------------
    @torch.no_grad()
    def project(self, tokens):
        """Pixel shuffle + ``mlp1`` of ``[B, P, C]`` patch tokens; ``[B, P * ratio^2, D]``."""
        side = int(math.isqrt(tokens.shape[1]))
        x = tokens.reshape(tokens.shape[0], side, side, -1)
        x = pixel_shuffle(x, self.downsample_ratio, self.ps_version)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        m = self.mlp1
        x = F.layer_norm(x, (x.shape[-1], ), m['0.weight'], m['0.bias'], 1e-5)
        x = F.linear(x, m['1.weight'], m['1.bias'])
        x = F.gelu(x)
        return F.linear(x, m['3.weight'], m['3.bias'])

    @torch.no_grad()
    def extract_feature(self, pixel_values):
        """Visual tokens of ``[N, 3, H, W]`` tiles, ``[N, tokens, D]``."""
        return self.project(self.vit_tokens(pixel_values))

    @torch.no_grad()
    def logits(self, input_ids, img_context_token_id, pixel_values=None, vit_embeds=None, attention_mask=None):
        """Logits of the chat model for ``input_ids`` ``[B, N]`` whose ``<IMG_CONTEXT>`` positions take the visual
        tokens of ``pixel_values`` (or the given projected ``vit_embeds``) in order."""
        if vit_embeds is None and pixel_values is not None:
            vit_embeds = self.extract_feature(pixel_values)
        embeds = self.llm.get_input_embeddings()(input_ids).clone()
        b, n, c = embeds.shape
        embeds = embeds.reshape(b * n, c)
        selected = input_ids.reshape(-1) == img_context_token_id
        if vit_embeds is not None:
            vit = vit_embeds.reshape(-1, c).to(embeds.dtype)
            if int(selected.sum()) != vit.shape[0]:
                raise ValueError(f'{int(selected.sum())} <IMG_CONTEXT> positions for {vit.shape[0]} visual tokens')
            embeds[selected] = embeds[selected] * 0.0 + vit
        elif bool(selected.any()):
            raise ValueError('input_ids hold <IMG_CONTEXT> but no image was given')
        return self.llm(inputs_embeds=embeds.reshape(b, n, c), attention_mask=attention_mask).logits
