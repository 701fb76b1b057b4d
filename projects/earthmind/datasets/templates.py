"""Chat templates, as data, keyed by name.

A conversation is laid out as::

    prefix + system(system) + user(q1) + assistant_prefix + a1 + assistant_suffix + separator
           + user(q2) + assistant_prefix + a2 + assistant_suffix + separator ...

Only ``a_i + assistant_suffix`` is trained on (see ``conversation.py``). The template
must match the LLM's own chat format: its marker tokens have to be single special
tokens of the tokenizer (checked by :func:`check_template_tokens`).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatTemplate:
    """One chat format.

    Args:
        name (str): Registry key.
        system (str): System block, with a ``{system}`` slot.
        user (str): User turn, with exactly one ``{input}`` slot.
        assistant_prefix (str): Text that opens an assistant turn (not trained on).
        assistant_suffix (str): End-of-turn text after an answer (trained on, so the
            model learns to stop).
        separator (str): Text after ``assistant_suffix`` before the next turn (not
            trained on).
        stop_words (tuple[str, ...]): Strings that end generation.
        default_system (str): System text used when a record has none.
        prefix (str): Text at the very start of the sequence (e.g. the BOS token for
            families whose tokenizer expects it).
    """

    name: str
    system: str
    user: str
    assistant_prefix: str
    assistant_suffix: str
    separator: str
    stop_words: tuple
    default_system: str
    prefix: str = ''

    def __post_init__(self):
        if self.user.count('{input}') != 1:
            raise ValueError(f"Template {self.name!r}: 'user' needs exactly one {{input}} slot, got {self.user!r}")
        if self.system.count('{system}') != 1:
            raise ValueError(f"Template {self.name!r}: 'system' needs exactly one {{system}} slot, "
                             f'got {self.system!r}')

    def format_system(self, text):
        """Return the system block for ``text``."""
        return self.system.replace('{system}', text)

    def split_user(self):
        """Return the user-turn text before and after the ``{input}`` slot."""
        before, after = self.user.split('{input}')
        return before, after


INTERNVL2_5_SYSTEM = ('你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的'
                      '多模态大语言模型。')
INTERNVL2_SYSTEM = '你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。'

TEMPLATES = {
    template.name: template
    for template in (
        ChatTemplate(
            name='qwen2_chat',
            system='<|im_start|>system\n{system}<|im_end|>\n',
            user='<|im_start|>user\n{input}<|im_end|>\n',
            assistant_prefix='<|im_start|>assistant\n',
            assistant_suffix='<|im_end|>',
            separator='\n',
            stop_words=('<|im_end|>', '<|endoftext|>'),
            default_system='You are a helpful assistant.',
        ),
        ChatTemplate(
            name='internlm2_chat',
            system='<|im_start|>system\n{system}<|im_end|>\n',
            user='<|im_start|>user\n{input}<|im_end|>\n',
            assistant_prefix='<|im_start|>assistant\n',
            assistant_suffix='<|im_end|>',
            separator='\n',
            stop_words=('<|im_end|>', ),
            default_system='You are an AI assistant whose name is InternLM (书生·浦语).',
            prefix='<s>',
        ),
        ChatTemplate(
            name='phi3_chat',
            system='<|system|>\n{system}<|end|>\n',
            user='<|user|>\n{input}<|end|>\n',
            assistant_prefix='<|assistant|>\n',
            assistant_suffix='<|end|>',
            separator='\n',
            stop_words=('<|end|>', '<|endoftext|>'),
            default_system='You are a helpful assistant.',
        ),
        # InternVL's own conversation formats ("MPT" style: role + message + separator), named as in the
        # ``template`` field of InternVL-family config.json files, with InternVL's system message.
        ChatTemplate(
            name='internvl2_5',
            system='<|im_start|>system\n{system}<|im_end|>\n',
            user='<|im_start|>user\n{input}<|im_end|>\n',
            assistant_prefix='<|im_start|>assistant\n',
            assistant_suffix='<|im_end|>',
            separator='\n',
            stop_words=('<|im_end|>', '<|endoftext|>'),
            default_system=INTERNVL2_5_SYSTEM,
        ),
        ChatTemplate(
            name='phi3-chat',
            system='<|system|>\n{system}<|end|>',
            user='<|user|>\n{input}<|end|>',
            assistant_prefix='<|assistant|>\n',
            assistant_suffix='<|end|>',
            separator='',
            stop_words=('<|end|>', '<|endoftext|>'),
            default_system=INTERNVL2_SYSTEM,
        ),
        # xtuner's prompt templates as Sa2VA and EarthMind train and predict with them (the ``template`` of their
        # config.json), without a system block. EarthMind-4B and Sa2VA-4B use ``phi3_chat`` on InternVL2.5's Qwen2.5
        # tokenizer, where its markers are plain text (processor ``text_markers=True``).
        ChatTemplate(
            name='sa2va_qwen_chat',
            system='<|im_start|>system\n{system}<|im_end|>\n',
            user='<|im_start|>user\n{input}<|im_end|>\n',
            assistant_prefix='<|im_start|>assistant\n',
            assistant_suffix='<|im_end|>',
            separator='\n',
            stop_words=('<|im_end|>', '<|endoftext|>'),
            default_system='',
        ),
        ChatTemplate(
            name='sa2va_phi3_chat',
            system='<|system|>\n{system}<|end|>\n',
            user='<|user|>\n{input}<|end|>\n',
            assistant_prefix='<|assistant|>\n',
            assistant_suffix='<|end|>',
            separator='\n',
            stop_words=('<|end|>', ),
            default_system='',
        ),
        ChatTemplate(
            name='sa2va_internlm2_chat',
            system='<|im_start|>system\n{system}<|im_end|>\n',
            user='<|im_start|>user\n{input}<|im_end|>\n',
            assistant_prefix='<|im_start|>assistant\n',
            assistant_suffix='<|im_end|>',
            separator='\n',
            stop_words=('<|im_end|>', ),
            default_system='',
            prefix='<s>',  # xtuner opens every sequence with the tokenizer's BOS where it has one
        ),
        ChatTemplate(
            name='llama3_chat',
            system='<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>',
            user='<|start_header_id|>user<|end_header_id|>\n\n{input}<|eot_id|>',
            assistant_prefix='<|start_header_id|>assistant<|end_header_id|>\n\n',
            assistant_suffix='<|eot_id|>',
            separator='',
            stop_words=('<|eot_id|>', ),
            default_system='You are a helpful assistant.',
            prefix='<|begin_of_text|>',
        ),
    )
}


def get_template(name):
    """Return a template by name (a :class:`ChatTemplate` is returned as it is).

    Raises:
        KeyError: If ``name`` is unknown; the message lists the known names.
    """
    if isinstance(name, ChatTemplate):
        return name
    if name not in TEMPLATES:
        raise KeyError(f'Unknown chat template {name!r}; known templates: {", ".join(sorted(TEMPLATES))}')
    return TEMPLATES[name]


def check_template_tokens(tokenizer, template):
    """Check that the template's marker tokens are single tokens of ``tokenizer``.

    A template that does not match the LLM (e.g. ``phi3_chat`` with a Qwen2 tokenizer)
    would otherwise split its markers into ordinary sub-words and train silently on a
    format the LLM never saw.

    Args:
        tokenizer: A Hugging Face tokenizer.
        template (str | ChatTemplate): The template or its name.

    Raises:
        ValueError: Naming the template and the tokens the tokenizer lacks.
    """
    template = get_template(template)
    markers = [template.assistant_suffix, *template.stop_words]
    if template.prefix:
        markers.append(template.prefix)
    vocab = tokenizer.get_vocab()
    missing = sorted({token for token in markers if token not in vocab})
    if missing:
        raise ValueError(f'Chat template {template.name!r} does not match the tokenizer '
                         f'{getattr(tokenizer, "name_or_path", "")!r}: it lacks the tokens {missing}')
