"""Task tokens in the prompt: ``<task:NAME>`` tells the model which kind of answer a record wants.

A record names its task in an optional ``"task"`` field, one of :data:`TASKS`. With
``task_tokens=True`` (dataset and ``EncodeConversation``) the task's token opens the
first human turn. Records without a task are left as they are.
"""
TASKS = ('classification', 'multilabel', 'vqa', 'caption', 'region_caption', 'grounding',
         'referring_segmentation', 'change_detection', 'change_caption', 'multiple_choice')


def task_special_token(task):
    """Prompt token of ``task``, e.g. ``<task:vqa>``.

    Raises:
        ValueError: If ``task`` is not one of :data:`TASKS`.
    """
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; known tasks: {", ".join(TASKS)}')
    return f'<task:{task}>'


def task_special_tokens():
    """Prompt tokens of all tasks, in :data:`TASKS` order (the processor adds them to its tokenizer)."""
    return tuple(task_special_token(task) for task in TASKS)


def add_task_token(conversations, task):
    """Return a copy of ``conversations`` whose first human turn starts with the task's token.

    Args:
        conversations (list[dict]): Turns of the record.
        task (str | None): The record's task; None returns ``conversations`` unchanged.

    Returns:
        list[dict]: New turns (the record itself is not modified).

    Raises:
        ValueError: If ``task`` is not one of :data:`TASKS`.
    """
    if task is None:
        return conversations
    token = task_special_token(task)
    if not conversations or not all(isinstance(turn, dict) for turn in conversations):
        return conversations  # malformed turns are reported by encode_conversation
    turns = [dict(turn) for turn in conversations]
    turns[0]['value'] = token + str(turns[0].get('value', ''))
    return turns
