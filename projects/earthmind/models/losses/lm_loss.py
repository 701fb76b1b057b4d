"""Next-token cross-entropy of a causal LM reduced per token or per sample, on supervised positions only."""
import torch.nn.functional as F

from projects.earthmind.structures.batch import IGNORE_INDEX

LOSS_REDUCTIONS = ('token', 'sample')


def causal_lm_loss(hidden_states, output_head, labels, sample_index, num_samples, reduction):
    """Cross-entropy of the next token, projecting only the supervised positions through the output head.

    Only positions whose next label is supervised go through ``output_head`` (no ``[B, L, vocab]`` logits), in
    float32 as Hugging Face's ``ForCausalLMLoss``.

    Args:
        hidden_states (Tensor): ``[R, L, H]`` last hidden states of the LLM.
        output_head (nn.Module): The LM head (``get_output_embeddings()``).
        labels (Tensor): ``[R, L]`` targets aligned with the inputs (-100 = ignored); shifted here.
        sample_index (Tensor): ``[R, L]`` index of the sample each position belongs to (row index for unpacked
            batches, see ``packed_sample_index`` for packed rows); -1 on padding.
        num_samples (int): Number of samples in the batch.
        reduction (str): ``'token'``: mean over all supervised tokens of the batch; ``'sample'``: mean over
            samples of each sample's mean token loss (samples without a supervised token are left out, as
            they contribute nothing with ``'token'`` either).

    Returns:
        Tensor: The scalar loss.
    """
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f'reduction must be one of {LOSS_REDUCTIONS}, got {reduction!r}')
    targets = labels[:, 1:]
    supervised = targets != IGNORE_INDEX
    logits = output_head(hidden_states[:, :-1][supervised]).float()
    losses = F.cross_entropy(logits, targets[supervised], reduction='none')
    if reduction == 'token':
        return losses.mean()
    # The target at position t + 1 belongs to the sample of position t + 1 (the same as t's inside a sample).
    owners = sample_index[:, 1:][supervised]
    sums = losses.new_zeros(num_samples).index_add(0, owners, losses)
    tokens = losses.new_zeros(num_samples).index_add(0, owners, losses.new_ones(losses.shape))
    trained = (tokens > 0).to(losses.dtype)
    return (sums / tokens.clamp(min=1) * trained).sum() / trained.sum()
