"""RSVQA LR / HR (Lobry et al. 2020) -> VQA records.

Source: three JSON files per split, ``<prefix>_questions.json`` (``{"questions": [{"id", "img_id",
"type", "question", "answers_ids", "active"}]}``), ``<prefix>_answers.json`` (``{"answers": [{"id",
"question_id", "answer", "active"}]}``) and ``<prefix>_images.json`` (``{"images": [{"id",
"questions_ids", "active"}]}``); the images are ``<image_folder>/<img_id>.tif`` (LR: ``Images_LR``,
HR: ``Data``). One record per active question: the question, its first active answer, ``task: vqa``
and ``eval.question_type`` (``presence``, ``comp``, ``count``, ``rural_urban`` (LR), ``area`` (HR)).
Inactive questions and images are counted as rejected, not converted.
"""
import os

from .conversion import MALFORMED_SOURCE, RejectedItem, convert_items, load_json, qa_turns

INACTIVE = 'inactive in the source'


def _by_id(rows, key, path):
    if not isinstance(rows, dict) or not isinstance(rows.get(key), list):
        raise ValueError(f'{path}: expected {{"{key}": [...]}}')
    return {row['id']: row for row in rows[key] if isinstance(row, dict) and 'id' in row}


def convert_rsvqa(questions_file, answers_file, images_file, data_root, image_folder, image_ext='.tif'):
    """Convert one RSVQA split.

    Args:
        questions_file, answers_file, images_file (str): The split's three JSON files.
        data_root (str): Folder the written image paths are relative to.
        image_folder (str): Image folder relative to ``data_root`` (``Images_LR`` or ``Data``).
        image_ext (str): Image file extension.

    Returns:
        tuple[list[dict], ConversionReport]
    """
    questions = load_json(questions_file, 'RSVQA questions file')
    answers = _by_id(load_json(answers_file, 'RSVQA answers file'), 'answers', answers_file)
    images = _by_id(load_json(images_file, 'RSVQA images file'), 'images', images_file)
    if not isinstance(questions, dict) or not isinstance(questions.get('questions'), list):
        raise ValueError(f'{questions_file}: expected {{"questions": [...]}}')

    def make(question):
        if not isinstance(question, dict):
            raise RejectedItem(MALFORMED_SOURCE, f'a question must be a JSON object, got {question!r}')
        name = f'question {question.get("id")!r}'
        if not all(key in question for key in ('id', 'img_id', 'type', 'question', 'answers_ids')):
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: needs id, img_id, type, question, answers_ids')
        image = images.get(question['img_id'])
        if not question.get('active', True) or (image is not None and not image.get('active', True)):
            raise RejectedItem(INACTIVE, f'{name} (image {question["img_id"]})')
        if image is None:
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: image {question["img_id"]} is not in {images_file}')
        found = [answers[i] for i in question['answers_ids'] if i in answers and answers[i].get('active', True)]
        if not found or not str(found[0].get('answer', '')).strip():
            raise RejectedItem(MALFORMED_SOURCE, f'{name}: no active answer among {question["answers_ids"]}')
        return [dict(id=f'rsvqa_{question["id"]}', image=os.path.join(image_folder, f'{question["img_id"]}{image_ext}'),
                     task='vqa', conversations=qa_turns(question['question'], str(found[0]['answer']).strip()),
                     eval=dict(question_type=str(question['type'])))]

    rows = questions['questions']
    return convert_items(((f'question {q.get("id") if isinstance(q, dict) else None!r} (row {i})', q)
                          for i, q in enumerate(rows)), make, data_root, os.fspath(questions_file))
