"""Prompt ids for inference, laid out exactly as ``encode_conversation`` lays out training sequences.

Each segment is tokenised on its own, as in training: opening + user prefix + text before ``<image>``, the image
ids, text after it + user suffix + assistant prefix; earlier turns add their answer, the end-of-turn suffix and
the separator.
"""
from projects.earthmind.datasets.templates import ChatTemplate
from projects.earthmind.utils.special_tokens import (IMAGE_PLACEHOLDER, IMG_CONTEXT_TOKEN, IMG_END_TOKEN,
                                                     IMG_START_TOKEN)


def template_from_fields(fields):
    """Rebuild a :class:`ChatTemplate` from its exported fields."""
    return ChatTemplate(**dict(fields, stop_words=tuple(fields['stop_words'])))


def image_prompt_prefix(sensors, sensor_tokens):
    """``<sensor:...>`` tokens (when the model was trained with them) followed by ``<image>``."""
    prefix = ''.join(f'<sensor:{name}>' for name in dict.fromkeys(sensors)) if sensor_tokens else ''
    return prefix + IMAGE_PLACEHOLDER


def encode_prompt(tokenizer, template, questions, answers, num_image_tokens, system=None):
    """Ids of a conversation whose last question awaits its answer.

    Args:
        tokenizer: The exported tokenizer.
        template (ChatTemplate): The chat template.
        questions (list[str]): User turns; at most one ``<image>`` (placed first when absent and an image is given).
        answers (list[str]): Answers of all but the last question.
        num_image_tokens (int): ``<IMG_CONTEXT>`` tokens of the image (0 without one).
        system (str | None): System text; None uses the template's default, ``''`` none.

    Returns:
        list[int]: Prompt ids ending with the assistant prefix.
    """
    if len(answers) != len(questions) - 1:
        raise ValueError(f'{len(questions)} questions need {len(questions) - 1} earlier answers, got {len(answers)}')
    questions = list(questions)
    placeholders = sum(q.count(IMAGE_PLACEHOLDER) for q in questions)
    if placeholders > 1 or (placeholders and not num_image_tokens):
        raise ValueError(f'{placeholders} {IMAGE_PLACEHOLDER} placeholders for {num_image_tokens} image tokens')
    if num_image_tokens and not placeholders:
        questions[0] = f'{IMAGE_PLACEHOLDER}\n{questions[0]}'
    system = template.default_system if system is None else system

    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    image_ids = [tokenizer.convert_tokens_to_ids(t) for t in (IMG_START_TOKEN, IMG_CONTEXT_TOKEN, IMG_END_TOKEN)]
    user_before, user_after = template.split_user()
    ids = []
    for turn, question in enumerate(questions):
        opening = template.prefix + (template.format_system(system) if system else '') if turn == 0 else ''
        before, placeholder, after = question.partition(IMAGE_PLACEHOLDER)
        ids += encode(opening + user_before + before)
        if placeholder:
            ids += [image_ids[0]] + [image_ids[1]] * num_image_tokens + [image_ids[2]]
        ids += encode(after + user_after + template.assistant_prefix)
        if turn < len(answers):
            ids += encode(answers[turn] + template.assistant_suffix) + encode(template.separator)
    return ids
