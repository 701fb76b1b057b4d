"""Every LLM family trains, exports and answers identically through ``AutoModel`` + ``AutoProcessor``.

For tiny random Qwen2, Phi-3, Llama and InternLM2 LLMs (each with a tokenizer trained here that carries its chat
template's tokens), the tiny sample-classification recipe trains two iterations in-process, the checkpoint is
exported, and the exported folder, loaded with ``trust_remote_code``, must make the
training processor's inputs, the training model's logits (bitwise, float32 on CPU) and its greedy answer. InternLM2
is not in transformers 4.48: its modeling files travel with the export (``auto_map`` of the LLM config).
"""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModel, AutoProcessor, PreTrainedTokenizerFast

from projects.earthmind.datasets.synthetic.sample_generator import QUESTION, make_sample_dataset
from projects.earthmind.engine.checkpoint_chain import read_last_checkpoint
from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint
from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.launch_config import adapt_to_device
from projects.earthmind.hf.export import build_model, export_to_hf

from .conftest import CLS_CONFIG, exported_logits

TINY_LLM = dict(vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=False)
# family: (llm config fields, chat template, special tokens of the template, eos token)
FAMILIES = {
    'qwen2': (dict(model_type='qwen2'), 'qwen2_chat', ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
              '<|endoftext|>'),
    'phi3': (dict(model_type='phi3', pad_token_id=0, bos_token_id=1, eos_token_id=2), 'phi3_chat',
             ['<unk>', '<s>', '<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>'],
             '<|endoftext|>'),
    'llama': (dict(model_type='llama'), 'llama3_chat',
              ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
              '<|end_of_text|>'),
    'internlm2': (dict(model_type='internlm2', bias=False), 'internlm2_chat',
                  ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'], '</s>'),
}
LLM_CLASSES = dict(qwen2='Qwen2ForCausalLM', phi3='Phi3ForCausalLM', llama='LlamaForCausalLM',
                   internlm2='InternLM2ForCausalLM')
CORPUS = [QUESTION, 'water forest desert urban', 'system user assistant You are a helpful assistant.',
          'You are an AI assistant whose name is InternLM']


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('families')
    make_sample_dataset(root / 'data' / 'sample', train_per_class=2, val_per_class=1, multisensor=False,
                        refseg=False)
    return root


def family_tokenizer(folder, special_tokens, eos):
    """A byte-level BPE with the template's special tokens, saved as a Hugging Face fast tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_LLM['vocab_size'] - 40, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=eos, pad_token=eos,
                                        additional_special_tokens=[t for t in special_tokens if t != eos])
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_trains_exports_and_answers_identically(family, sample, tmp_path, monkeypatch):
    llm_fields, template, special_tokens, eos = FAMILIES[family]
    monkeypatch.chdir(sample)
    tokenizer = family_tokenizer(tmp_path / 'tokenizer', special_tokens, eos)
    # A stop word the random model does not say: every answer runs the decoding loop for several steps.
    options = {'model.processor.tokenizer': tokenizer, 'model.processor.template': template,
               'model.llm.llm_config': dict(TINY_LLM, _delete_=True, **llm_fields),
               'model.llm.attn_implementation': 'eager',
               'model.generation_cfg': dict(max_new_tokens=6, stop_words=['</img>']),
               'train_cfg.max_epochs': None, 'train_cfg.max_iters': 2, 'param_scheduler': None}
    cfg = load_config(CLS_CONFIG, options)
    adapt_to_device(cfg)
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg._format_python_code = False
    Runner.from_cfg(cfg).train()
    checkpoint = read_last_checkpoint(cfg.work_dir)

    export_to_hf(cfg, checkpoint, str(tmp_path / f'hf_{family}'))
    model = build_model(cfg)
    load_test_checkpoint(model, checkpoint)
    exported = AutoModel.from_pretrained(str(tmp_path / f'hf_{family}'), trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(str(tmp_path / f'hf_{family}'), trust_remote_code=True)
    assert type(processor).__module__.startswith('transformers_modules.'), 'must run the exported processor'
    assert type(exported.core.llm).__name__ == LLM_CLASSES[family]

    image = osp.join(sample, 'data', 'sample', 'images', 'val_0000.tif')
    ours = model.processor(image=image, text=QUESTION)
    theirs = processor(image=image, text=QUESTION)
    for field in ('input_ids', 'attention_mask', 'pixel_values', 'image_layout'):
        assert torch.equal(getattr(ours, field), getattr(theirs, field)), field
    with torch.no_grad():
        logits = model(data=ours, mode='tensor').logits
    assert torch.equal(logits, exported_logits(exported, theirs))
    expected = model.predict(ours)[0]
    answer = exported.predict_forward(image=image, text=QUESTION)
    assert answer['prediction_ids'] == expected['prediction_ids']
    assert answer['text'] == expected['prediction']
    assert len(answer['prediction_ids']) > 0
