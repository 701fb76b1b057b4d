"""Turning a LLaVA-style conversation into ``input_ids`` and ``labels``.

Record conversations alternate ``{"from": "human", ...}`` and ``{"from": "gpt", ...}``
turns, starting with a human turn and ending with a gpt turn (a prompt for generation ends
with the human turn awaiting its answer, and with the assistant prefix). The single ``<image>``
placeholder becomes ``<img>`` + ``<IMG_CONTEXT>`` x ``num_image_tokens`` + ``</img>``;
the ids of these tokens are looked up in the tokenizer. A record with an image but no
placeholder gets ``<image>\\n`` prepended to its first human turn (the LLaVA/InternVL
convention). Each ``<vp>`` (region prompt placeholder) in a human turn becomes the single
token ``<VP_CONTEXT>``. Labels are ``IGNORE_INDEX`` everywhere except the answer tokens
and the assistant end-of-turn suffix.
"""
import torch

from projects.earthmind.structures.batch import IGNORE_INDEX
from projects.earthmind.utils.special_tokens import (IMAGE_PLACEHOLDER, IMG_CONTEXT_TOKEN, IMG_END_TOKEN,
                                                     IMG_START_TOKEN, VP_CONTEXT_TOKEN, VP_TOKEN)

from .templates import get_template

HUMAN, GPT = 'human', 'gpt'


class ConversationFormatError(ValueError):
    """A conversation that cannot be encoded (turn order, roles, image placeholder)."""


class SequenceTooLongError(ValueError):
    """An encoded sequence longer than ``max_length``."""


def _token_id(tokenizer, token):
    token_id = tokenizer.convert_tokens_to_ids(token)
    # Unknown tokens map to None, or to the unk id where the tokenizer has one.
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise ValueError(f'Tokenizer has no {token} token; call add_special_tokens() first.')
    return token_id


def image_token_ids(tokenizer, num_image_tokens):
    """Ids that replace ``<image>``: ``<img>``, ``num_image_tokens`` x ``<IMG_CONTEXT>``, ``</img>``."""
    start, context, end = (_token_id(tokenizer, token) for token in (IMG_START_TOKEN, IMG_CONTEXT_TOKEN, IMG_END_TOKEN))
    return [start] + [context] * num_image_tokens + [end]


def check_turns(conversations, num_image_tokens, name, generation_prompt=False):
    """Validate roles, order, non-empty turns and the image placeholder; return the human turn texts and answers.

    With ``generation_prompt`` the conversation ends with a human turn (one answer fewer than questions), and its
    answers (the model's earlier ones) may be empty.
    """
    if not isinstance(conversations, list) or not conversations:
        raise ConversationFormatError(f'{name}: "conversations" must be a non-empty list of turns')
    for i, turn in enumerate(conversations):
        if not isinstance(turn, dict) or not isinstance(turn.get('value'), str):
            raise ConversationFormatError(f'{name}: turn {i} must be a dict with a string "value"')
        expected = HUMAN if i % 2 == 0 else GPT
        if turn.get('from') != expected:
            raise ConversationFormatError(
                f'{name}: turns must alternate human/gpt starting with human; turn {i} is from '
                f'{turn.get("from")!r}, expected {expected!r}')
        # An empty answer trains on the end-of-turn token alone; an empty question asks nothing. In a prompt for
        # generation the earlier answers are the model's own, and it may have answered nothing.
        if not turn['value'].strip() and not (generation_prompt and expected == GPT):
            what = 'question' if expected == HUMAN else 'answer'
            raise ConversationFormatError(f'{name}: turn {i} ({expected}) is an empty {what}')
    if generation_prompt and not len(conversations) % 2:
        raise ConversationFormatError(f'{name}: a prompt for generation must end with a human turn')
    if not generation_prompt and len(conversations) % 2:
        detail = 'has no assistant ("gpt") turn' if len(conversations) == 1 else 'ends with a human turn (no answer)'
        raise ConversationFormatError(f'{name}: conversation {detail}')

    questions = [turn['value'] for turn in conversations[0::2]]
    answers = [turn['value'] for turn in conversations[1::2]]
    for placeholder in (IMAGE_PLACEHOLDER, VP_TOKEN):
        if any(placeholder in answer for answer in answers):
            raise ConversationFormatError(f'{name}: {placeholder} may only appear in a human turn')
    placeholders = sum(question.count(IMAGE_PLACEHOLDER) for question in questions)
    if placeholders > 1:
        raise ConversationFormatError(f'{name}: {placeholders} {IMAGE_PLACEHOLDER} placeholders; at most one allowed')
    if placeholders == 1 and num_image_tokens == 0:
        raise ConversationFormatError(f'{name}: {IMAGE_PLACEHOLDER} placeholder but the record has no image')
    if placeholders == 0 and num_image_tokens > 0:
        questions[0] = f'{IMAGE_PLACEHOLDER}\n{questions[0]}'
    return questions, answers


def encode_conversation(conversations, tokenizer, template, num_image_tokens, max_length, system=None,
                        record_id=None, generation_prompt=False):
    """Tokenise a conversation turn by turn and mask everything but the answers.

    Training sequences and generation prompts are laid out by this one function, so a model is asked exactly as it
    was trained.

    Args:
        conversations (list[dict]): Turns ``{"from": "human" | "gpt", "value": str}``.
        tokenizer: A Hugging Face tokenizer that has the EarthMind special tokens.
        template (str | ChatTemplate): Chat template or its name.
        num_image_tokens (int): ``<IMG_CONTEXT>`` tokens for the image; 0 for a
            text-only record.
        max_length (int): Longest allowed sequence.
        system (str | None): System text; None uses the template's default, ``''``
            leaves the system block out.
        record_id (str | None): Names the record in error messages.
        generation_prompt (bool): The conversation ends with the question to answer; the ids end with the
            assistant prefix and ``max_length`` is not enforced (nothing is trained).

    Returns:
        tuple[torch.LongTensor, torch.LongTensor]: ``input_ids`` and ``labels``, both
        ``[L]``.

    Raises:
        ConversationFormatError: Roles not alternating human/gpt, an empty (or
            whitespace) turn, no assistant turn, a trailing human turn, more than one
            ``<image>``, ``<image>`` in an answer or without an image, ``<vp>`` in an answer.
        ValueError: If the tokenizer lacks a special token the conversation needs
            (``<VP_CONTEXT>`` for ``<vp>``).
        SequenceTooLongError: ``L > max_length`` (nothing is ever cut).
    """
    template = get_template(template)
    name = f'record {record_id!r}' if record_id is not None else 'conversation'
    questions, answers = check_turns(conversations, num_image_tokens, name, generation_prompt)
    if system is None:
        system = template.default_system

    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    def encode_question(text):
        """Encode human text, each ``<vp>`` becoming one ``<VP_CONTEXT>`` id."""
        pieces = text.split(VP_TOKEN)
        if len(pieces) == 1:
            return encode(text)
        region_id = _token_id(tokenizer, VP_CONTEXT_TOKEN)
        ids = encode(pieces[0])
        for piece in pieces[1:]:
            ids += [region_id] + encode(piece)
        return ids

    input_ids, labels = [], []

    def append(ids, trained):
        input_ids.extend(ids)
        labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))

    user_before, user_after = template.split_user()
    for turn, question in enumerate(questions):
        opening = template.prefix + (template.format_system(system) if system else '') if turn == 0 else ''
        before, placeholder, after = question.partition(IMAGE_PLACEHOLDER)
        append(encode_question(opening + user_before + before), trained=False)
        if placeholder:
            append(image_token_ids(tokenizer, num_image_tokens), trained=False)
        append(encode_question(after + user_after + template.assistant_prefix), trained=False)
        if turn < len(answers):
            append(encode(answers[turn] + template.assistant_suffix), trained=True)
        if turn < len(questions) - 1:
            append(encode(template.separator), trained=False)

    if not generation_prompt and len(input_ids) > max_length:
        raise SequenceTooLongError(
            f'{name}: {len(input_ids)} tokens ({num_image_tokens} of them image tokens) exceed '
            f'max_length={max_length}; raise max_length, lower max_tiles or shorten the conversation')
    return torch.tensor(input_ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)
