"""Chat templates for training, with `{% generation %}` markers so only assistant tokens carry the loss.

transformers' `apply_chat_template(..., return_assistant_tokens_mask=True)` marks the tokens rendered inside
`{% generation %}...{% endgeneration %}`; each template below puts the assistant's content AND its end-of-turn token
inside the markers (so the model learns to stop) and the role header outside (it is the prompt at inference).
The markers are ignored when rendering for generation, so the same template is saved with the trained model.

Select one in a recipe with `chat_template: chatml | qwen | mistral | llama3 | model` (`model` keeps the tokenizer's
own template; it must already contain generation markers, or TRL must know how to add them).

    from limo.train.templates import get_template
    tokenizer.chat_template = get_template("qwen")
"""

from limo.errors import LimoError

# ChatML (SmolLM2, Qwen, ...). No default system prompt: LIMO data always carries one (records.LIMO_SYSTEM_PROMPT).
CHATML = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen2.5-Instruct: ChatML plus Qwen's default system prompt when the conversation has none (as in Qwen's template).
QWEN = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}" + CHATML
)

# Mistral-Small-24B-Instruct-2501 (V7-Tekken): <s>[SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]...[/INST]answer</s>
MISTRAL = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}"
    "{%- elif message['role'] == 'user' %}"
    "{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + eos_token }}{% endgeneration %}"
    "{%- endif %}"
    "{%- endfor %}"
)

# Llama 3 / 3.1 Instruct (no tools, no date header).
LLAMA3 = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

TEMPLATES: dict[str, str] = {"chatml": CHATML, "qwen": QWEN, "mistral": MISTRAL, "llama3": LLAMA3}
KNOWN = [*TEMPLATES, "model"]


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and "generation" in template and "endgeneration" in template  # type: ignore[operator]


def get_template(name: str) -> str:
    """The template text for a known family name; `LimoError` listing the known names otherwise."""
    if name not in TEMPLATES:
        raise LimoError(f"unknown chat template '{name}'; known: {', '.join(KNOWN)}")
    return TEMPLATES[name]


def apply_template(tokenizer, name: str) -> str:
    """Set `tokenizer.chat_template` for training and return it. `model` keeps the tokenizer's own template, adding
    generation markers through TRL when it knows the template; otherwise it explains which names to use."""
    if name != "model":
        tokenizer.chat_template = get_template(name)
        return tokenizer.chat_template
    own = tokenizer.chat_template
    if not own:
        raise LimoError(
            f"chat_template: 'model' but this tokenizer has no chat template; use one of {', '.join(TEMPLATES)}"
        )
    if has_generation_markers(own):
        return own
    try:
        from trl.chat_template_utils import get_training_chat_template

        tokenizer.chat_template = get_training_chat_template(tokenizer)
        return tokenizer.chat_template
    except Exception as e:  # TRL only knows a few templates
        raise LimoError(
            "chat_template: 'model' but the tokenizer's own template has no {% generation %} markers, so assistant "
            f"tokens cannot be masked ({e}). Use one of {', '.join(TEMPLATES)}."
        ) from e
