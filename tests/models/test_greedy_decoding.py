"""The core's greedy decoding equals Hugging Face's ``generate`` on the same input embeddings.

The core decodes step by step through the LLM's forward (so families whose remote ``generate`` cannot start from
input embeddings decode too); for the families whose ``generate`` can, both must pick the same tokens, for a batch
of prompts of different lengths (left padding) and with stop tokens ending some rows early.
"""
import pytest
import torch

from projects.earthmind.models.earthmind_core import _pad_rows
from projects.earthmind.models.earthmind_model import EarthMindModel
from projects.earthmind.structures.batch import EarthMindBatch
from tests.models.conftest import TINY_QWEN2, tiny_model_cfg

FAMILIES = dict(qwen2=dict(), phi3=dict(model_type='phi3', pad_token_id=0), llama=dict(model_type='llama'))


@pytest.mark.parametrize('family', list(FAMILIES))
def test_core_generate_matches_hugging_face_generate(tokenizer, family):
    llm_config = dict(TINY_QWEN2, **FAMILIES[family])
    torch.manual_seed(0)
    model = EarthMindModel(**tiny_model_cfg(
        tokenizer, llm=dict(type='projects.earthmind.models.language_models.build_causal_lm', llm_config=llm_config,
                            attn_implementation='eager'))).eval()
    with torch.no_grad():  # large random weights: the answers vary from step to step
        for param in model.core.language_model.parameters():
            param.normal_(std=0.3)
    prompts = [model.tokenizer.encode(text) for text in ('Which class?', 'forest water desert urban road', 'x')]
    ids, mask = _pad_rows([torch.tensor(p) for p in prompts], model.processor.pad_token_id, left=False)
    batch = EarthMindBatch(input_ids=ids, attention_mask=mask.bool(), image_layout=torch.zeros(3, 3, dtype=torch.long),
                           pixel_values=torch.zeros(0, 3, 56, 56), group_ids=[torch.zeros(0)] * 3,
                           date_offsets=[torch.zeros(0)] * 3, meta=[{}] * 3)
    core, pad = model.core, model.processor.pad_token_id
    # Stop ids: two tokens the random model writes after a few steps on some rows.
    free = core.generate(batch, [-1], pad, max_new_tokens=10)
    stops = sorted({row[3] for row in free})[:2]
    ours = core.generate(batch, stops, pad, max_new_tokens=10)
    left, left_mask = _pad_rows([torch.tensor(p) for p in prompts], pad, left=True)
    embeds = core.embed(batch.replace(input_ids=left, attention_mask=left_mask))
    rows = core.language_model.generate(inputs_embeds=embeds, attention_mask=left_mask, do_sample=False, num_beams=1,
                                        max_new_tokens=10, eos_token_id=stops, pad_token_id=pad).tolist()
    theirs = [row[:next((i for i, t in enumerate(row) if t in stops), len(row))] for row in rows]
    assert ours == theirs
    assert len({len(row) for row in ours}) > 1 or len(set(map(tuple, free))) > 1, 'a degenerate comparison'


def test_an_answer_ends_where_its_text_holds_a_stop_word(tokenizer):
    """Templates whose markers are text for the tokenizer (xtuner's phi3_chat on Qwen2.5, as EarthMind-4B) stop
    where the decoded answer holds the stop word; the answer text ends before it."""
    torch.manual_seed(0)
    model = EarthMindModel(**tiny_model_cfg(tokenizer, processor=dict(template='sa2va_phi3_chat',
                                                                      text_markers=True))).eval()
    processor = model.processor
    assert processor.stop_texts() == ['<|end|>'] and model.text_stop is not None
    prompt = torch.tensor([model.tokenizer.encode('Which class?')])
    batch = EarthMindBatch(input_ids=prompt, attention_mask=torch.ones_like(prompt, dtype=torch.bool),
                           image_layout=torch.zeros(1, 3, dtype=torch.long), pixel_values=torch.zeros(0, 3, 56, 56),
                           group_ids=[torch.zeros(0)], date_offsets=[torch.zeros(0)], meta=[{}])
    free = model.core.generate(batch, [-1], processor.pad_token_id, max_new_tokens=6)[0]
    # A stop condition met after the third token ends the answer there, that token kept.
    cut = model.core.generate(batch, [-1], processor.pad_token_id, max_new_tokens=6,
                              text_stop=lambda ids: len(ids) == 3)[0]
    assert cut == free[:3] and len(free) == 6
    # Checked after every new token: the answer stops with the token that completes the stop word.
    answer = model.tokenizer.encode('forest.<|end|>', add_special_tokens=False)
    assert model.text_stop(answer) and not model.text_stop(answer[:-1])
    assert processor.decode(answer + model.tokenizer.encode('more', add_special_tokens=False)) == 'forest.'
