"""The questions of a scene run: free text, or a task name turned into the prompt the sample recipes train.

A question is ``dict(text=..., task=...)``; ``task`` is the processor's task name (its ``<task:NAME>`` token opens
the prompt when the model was trained with task tokens) or None. Task names on the command line:

========  =====================================================================  ==========================
name      prompt                                                                 processor task
========  =====================================================================  ==========================
classify  ``Which land-cover class does this image show? Answer with one of: …``  ``classification``
caption   ``Describe this image in one sentence.``                                ``caption``
ground    ``Where is <ref>TARGET</ref>? Answer with a box.``                      ``grounding``
segment   ``Please segment the TARGET.``                                          ``referring_segmentation``
========  =====================================================================  ==========================

A job file (YAML or JSON) holds ``questions``: a list of strings or of ``{question | task, target, classes}`` dicts.
"""
import json
import os.path as osp

TASK_PROMPTS = {
    'classify': ('classification', 'Which land-cover class does this image show? Answer with one of: {classes}.'),
    'caption': ('caption', 'Describe this image in one sentence.'),
    'ground': ('grounding', 'Where is <ref>{target}</ref>? Answer with a box.'),
    'segment': ('referring_segmentation', 'Please segment the {target}.'),
}


def task_question(name, target=None, classes=None):
    """The question of a task name.

    Args:
        name (str): One of :data:`TASK_PROMPTS`.
        target (str | None): What to ground or segment (``ground``, ``segment``).
        classes (Sequence[str] | None): The class names (``classify``).

    Raises:
        ValueError: On an unknown task or a missing target / class list.
    """
    if name not in TASK_PROMPTS:
        raise ValueError(f'unknown task {name!r}; known: {", ".join(TASK_PROMPTS)}')
    task, prompt = TASK_PROMPTS[name]
    if '{target}' in prompt and not target:
        raise ValueError(f'task {name!r} needs a target (what to find), e.g. --target "building"')
    if '{classes}' in prompt and not classes:
        raise ValueError(f'task {name!r} needs the class names, e.g. --classes water,forest,urban')
    return dict(text=prompt.format(target=target, classes=', '.join(classes or ())), task=task)


def load_job_questions(path):
    """The questions of a YAML/JSON job file (see the module docstring).

    Raises:
        FileNotFoundError | ValueError: Naming the file and the entry that is wrong.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'job file {path} does not exist')
    import yaml
    with open(path, encoding='utf-8') as f:
        try:
            job = yaml.safe_load(f) if path.endswith(('.yaml', '.yml')) else json.load(f)
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise ValueError(f'{path}: not a valid job file: {err}') from err
    entries = job.get('questions') if isinstance(job, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{path}: a job file needs a non-empty "questions" list')
    questions = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            questions.append(dict(text=entry, task=None))
        elif isinstance(entry, dict) and 'question' in entry:
            questions.append(dict(text=str(entry['question']), task=entry.get('task')))
        elif isinstance(entry, dict) and 'task' in entry:
            try:
                questions.append(task_question(entry['task'], entry.get('target'), entry.get('classes')))
            except ValueError as err:
                raise ValueError(f'{path}: questions[{i}]: {err}') from err
        else:
            raise ValueError(f'{path}: questions[{i}] must be a string or a dict with "question" or "task", '
                             f'got {entry!r}')
    return questions
