"""Questions of a scene run: task names turned into the sample recipes' prompts, and job files."""
import json

import pytest

from projects.earthmind.inference.scene_questions import load_job_questions, task_question


def test_task_names_give_the_trained_prompts():
    assert task_question('classify', classes=['crops', 'rock']) == dict(
        text='Which land-cover class does this image show? Answer with one of: crops, rock.', task='classification')
    assert task_question('segment', target='flooded area') == dict(text='Please segment the flooded area.',
                                                                   task='referring_segmentation')
    assert task_question('ground', target='the ship')['text'] == 'Where is <ref>the ship</ref>? Answer with a box.'
    with pytest.raises(ValueError, match='needs a target'):
        task_question('segment')
    with pytest.raises(ValueError, match='needs the class names'):
        task_question('classify')
    with pytest.raises(ValueError, match="unknown task 'count'"):
        task_question('count')


def test_job_files_in_yaml_and_json(tmp_path):
    job = tmp_path / 'job.yaml'
    job.write_text('questions:\n  - Describe this image in one sentence.\n'
                   '  - {task: segment, target: building}\n  - {question: "Is there water?", task: vqa}\n')
    assert load_job_questions(str(job)) == [
        dict(text='Describe this image in one sentence.', task=None),
        dict(text='Please segment the building.', task='referring_segmentation'),
        dict(text='Is there water?', task='vqa')]
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(questions=['ok', dict(task='ground')])))
    with pytest.raises(ValueError, match=r'bad.json: questions\[1\]: task .ground. needs a target'):
        load_job_questions(str(bad))
    bad.write_text(json.dumps(dict(questions=[])))
    with pytest.raises(ValueError, match='needs a non-empty "questions" list'):
        load_job_questions(str(bad))
    bad.write_text('{"questions": [')
    with pytest.raises(ValueError, match='bad.json: not a valid job file'):
        load_job_questions(str(bad))
    with pytest.raises(FileNotFoundError, match='missing.yaml'):
        load_job_questions(str(tmp_path / 'missing.yaml'))
