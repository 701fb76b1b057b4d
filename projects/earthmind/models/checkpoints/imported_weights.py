"""Fitting an :class:`ImportedCheckpoint` into a model core: its tokenizer, its token rows and its extra weights."""
import torch

from projects.earthmind.structures.box_codec import BOX_MARKUP_TOKENS

from .internvl import CheckpointMismatchError


def check_imported_tokenizer(processor, imported):
    """The processor's tokenizer must be the checkpoint's: every token the checkpoint's tokenizer files add has the
    same id in it, and the checkpoint's embedding has a row for each.

    Raises:
        CheckpointMismatchError: Naming the folder and the tokens that differ.
    """
    vocab = processor.tokenizer.get_vocab()
    differing = {token: (token_id, vocab.get(token)) for token, token_id in imported.tokenizer_added_tokens.items()
                 if vocab.get(token) != token_id}
    if differing:
        ordered = sorted(differing.items(), key=lambda kv: kv[1][0])
        shown = ', '.join(f'{token!r}: id {theirs} in the checkpoint, {ours} in the processor'
                          for token, (theirs, ours) in ordered[:5])
        if len(ordered) > 5:
            shown += f', and {len(ordered) - 5} more'
        raise CheckpointMismatchError(
            f'the processor\'s tokenizer does not match the tokenizer files of {imported.path} ({shown}): set '
            f'model[\'processor\'][\'tokenizer\'] = {imported.path!r}')
    rows = imported.llm.get_input_embeddings().num_embeddings
    beyond = sorted((token_id, token) for token, token_id in imported.tokenizer_added_tokens.items()
                    if token_id >= rows)
    if beyond:
        raise CheckpointMismatchError(
            f'the tokenizer files of {imported.path} hold tokens past the {rows} rows of its embedding: {beyond}')


def apply_imported_tokens(processor, language_model, imported):
    """Copy the rows of the checkpoint's tokens to their toolkit counterparts (matched by text) after the
    embeddings have grown to the processor's vocabulary.

    Returns:
        dict: The import report: ``format``, ``path``, ``copied_rows`` (``{toolkit token: checkpoint token}``),
        ``new_tokens`` (toolkit tokens the checkpoint lacks, initialised by the LLM: new rows),
        ``unmatched_tokens`` (checkpoint tokens with no toolkit meaning, kept) and ``notes``.

    Raises:
        CheckpointMismatchError: When a counterpart names a token the checkpoint lacks, or would overwrite a row
            the checkpoint trained.
    """
    vocab = processor.tokenizer.get_vocab()
    theirs = imported.tokenizer_added_tokens
    input_rows = language_model.get_input_embeddings().weight
    output = language_model.get_output_embeddings()
    for ours, source in imported.token_counterparts.items():
        if source not in theirs:
            raise CheckpointMismatchError(f'{imported.path}: the tokenizer has no {source!r} (counterpart of {ours!r})')
        if ours in theirs:
            raise CheckpointMismatchError(f'{imported.path}: {ours!r} is a token of the checkpoint already; it cannot '
                                          f'take the row of {source!r}')
        with torch.no_grad():
            input_rows[vocab[ours]] = input_rows[vocab[source]]
            if output is not None and output.weight is not input_rows:
                output.weight[vocab[ours]] = output.weight[vocab[source]]
    toolkit = set(processor.added_tokens())
    template_markers = set(processor.template.stop_words)
    # The tokenizer's own bos/eos/unk/pad are the LLM's, not additions of the checkpoint.
    own = {token for name, token in processor.tokenizer.special_tokens_map.items()
           if name != 'additional_special_tokens'}
    known = toolkit | template_markers | own | set(BOX_MARKUP_TOKENS) | set(imported.token_counterparts.values())
    unmatched = sorted(set(imported.unmatched_tokens) | {t for t in theirs if t not in known and _is_markup(t)},
                       key=lambda t: theirs.get(t, -1))
    new = [t for t in processor.added_tokens() if t not in theirs and t not in imported.token_counterparts]
    return dict(format=imported.format, path=imported.path, copied_rows=dict(imported.token_counterparts),
                new_tokens=new, unmatched_tokens=unmatched, notes=list(imported.notes))


def _is_markup(token):
    # The LLM family's own control tokens (Qwen's <|...|>, Phi-3's <|...|>) belong to its chat format, not to the
    # checkpoint's additions.
    return not (token.startswith('<|') and token.endswith('|>'))


def load_partial_state(module, state, path, what, complete):
    """Load ``state`` into ``module``: every key must be one of the module's and of its shape; with ``complete``
    every weight of the module must be given.

    Raises:
        CheckpointMismatchError: Listing unexpected, mis-shaped and (with ``complete``) missing keys, naming ``path``.
    """
    own = module.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    mismatched = sorted(f'{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}'
                        for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    missing = sorted(k for k in own if k not in state) if complete else []
    if unexpected or mismatched or missing:
        lines = [f'{label} ({len(keys)}): {keys}' for label, keys in
                 (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', mismatched)) if keys]
        raise CheckpointMismatchError(f'the {what} weights of {path} do not match the model:\n' + '\n'.join(lines))
    with torch.no_grad():
        for key, tensor in state.items():
            own[key].copy_(tensor)


def format_import_report(report):
    """The import report of :func:`apply_imported_tokens` as lines of text."""
    lines = [f'imported {report["format"]} checkpoint {report["path"]}']
    if report['copied_rows']:
        lines.append('token rows copied by text: ' + ', '.join(f'{ours} <- {theirs}'
                                                                 for ours, theirs in report['copied_rows'].items()))
    if report['new_tokens']:
        lines.append(f'new tokens ({len(report["new_tokens"])}, rows initialised by the LLM): '
                     + ' '.join(report['new_tokens']))
    if report['unmatched_tokens']:
        lines.append(f'checkpoint tokens without a toolkit counterpart, kept: {" ".join(report["unmatched_tokens"])}')
    lines.extend(f'note: {note}' for note in report['notes'])
    return lines
