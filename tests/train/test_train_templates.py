"""Chat templates: the assistant-only loss mask on a real tokenised example, and template selection errors."""

import pytest

from limo.errors import LimoError
from limo.records import chat_messages
from limo.train.data import IGNORE, tokenize_messages
from limo.train.templates import KNOWN, TEMPLATES, apply_template, get_template, has_generation_markers


def _span(labels):
    idx = [i for i, v in enumerate(labels) if v != IGNORE]
    return idx


def test_mask_is_exactly_the_assistant_turn(tokenizer):
    apply_template(tokenizer, "chatml")
    answer = "We add: $2+3=5$. So the answer is \\boxed{5}."
    messages = chat_messages("What is 2+3?", answer)
    ids, labels = tokenize_messages(tokenizer, messages)
    # the prompt as inference renders it (generation prompt included) is exactly the unlabelled prefix
    prompt_ids = tokenizer.apply_chat_template(
        messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    target = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    start, end = len(prompt_ids), len(prompt_ids) + len(target)
    assert ids[:start] == list(prompt_ids)
    assert ids[start:end] == target
    assert labels[start:end] == target  # assistant content + end-of-turn token carry the loss
    assert all(v == IGNORE for v in labels[:start])  # system + user + assistant header: -100
    assert all(v == IGNORE for v in labels[end:])  # the trailing newline after <|im_end|>: -100
    assert tokenizer.decode([ids[i] for i in _span(labels)]) == answer + "<|im_end|>"


def test_multi_turn_masks_every_assistant_turn_and_no_user_turn(tokenizer):
    apply_template(tokenizer, "chatml")
    messages = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A one"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A two"},
    ]
    ids, labels = tokenize_messages(tokenizer, messages)
    trained = tokenizer.decode([t for t, v in zip(ids, labels, strict=False) if v != IGNORE])
    assert trained == "A one<|im_end|>A two<|im_end|>"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_masks_the_answer_and_ends_the_turn(tokenizer, name):
    template = apply_template(tokenizer, name)
    assert has_generation_markers(template)
    messages = chat_messages("What is 2+3?", "It is \\boxed{5}.")
    ids, labels = tokenize_messages(tokenizer, messages)
    trained = tokenizer.decode([t for t, v in zip(ids, labels, strict=False) if v != IGNORE])
    assert trained.startswith("It is \\boxed{5}.")
    assert trained != "It is \\boxed{5}."  # the end-of-turn token is trained too
    assert "What is 2+3?" not in trained
    text = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    assert "What is 2+3?" in text


def test_family_formats(tokenizer):
    m = chat_messages("Q?", "A.", system="S")
    tokenizer.chat_template = get_template("mistral")
    text = tokenizer.apply_chat_template(m, tokenize=False)
    assert text == f"{tokenizer.bos_token}[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]Q?[/INST]A.{tokenizer.eos_token}"
    tokenizer.chat_template = get_template("llama3")
    text = tokenizer.apply_chat_template(m[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    tokenizer.chat_template = get_template("qwen")
    text = tokenizer.apply_chat_template(m[1:2], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are Qwen")


def test_unknown_template_names_the_known_ones():
    with pytest.raises(LimoError) as e:
        get_template("vicuna")
    for name in KNOWN:
        assert name in str(e.value)


def test_unknown_template_in_a_recipe_is_a_clear_error():
    from limo.train.sft import build_train_config

    with pytest.raises(LimoError) as e:
        build_train_config({"train": {"chat_template": "alpaca"}}, "recipe.yaml")
    assert "alpaca" in str(e.value) and "chatml" in str(e.value) and "recipe.yaml" in str(e.value)


def test_model_template_without_markers_is_explained(tokenizer):
    # SmolLM2's own template has no generation markers and TRL cannot patch it: say which names to use instead
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(LimoError, match="generation"):
        apply_template(tokenizer, "model")
