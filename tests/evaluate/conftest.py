"""A tiny random Llama checkpoint with a locally trained byte-level tokenizer (no hub access)."""

from __future__ import annotations

import json

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder with config.json, weights and tokenizer of a 2-layer, d=32 LlamaForCausalLM."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = [
        "Question: what is 12 + 30? Answer: The answer is 42.",
        "def f(x):\n    return x + 1",
    ] * 50
    core.train_from_iterator(text, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture
def mini_data(tmp_path):
    """A data folder with a few records per task, in the published layouts."""
    folder = tmp_path / "bench"
    (folder / "mmlu" / "test").mkdir(parents=True)
    (folder / "mmlu" / "dev").mkdir(parents=True)

    def jsonl(name, rows):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    jsonl(
        "gsm8k_test.jsonl",
        [
            {
                "question": f"Tom has {i} apples and buys 2. How many?",
                "answer": f"{i}+2={i + 2}\n#### {i + 2}",
            }
            for i in range(4)
        ],
    )
    jsonl(
        "gsm8k_train.jsonl",
        [{"question": f"Sue has {i} pens.", "answer": f"So {i}.\n#### {i}"} for i in range(10)],
    )
    jsonl(
        "math500_test.jsonl",
        [
            {
                "problem": "What is $1+1$?",
                "solution": "It is $\\boxed{2}$.",
                "answer": "2",
                "unique_id": "a",
            },
            {
                "problem": "Half of 1?",
                "solution": "$\\boxed{\\frac12}$",
                "answer": "\\frac{1}{2}",
                "unique_id": "b",
            },
        ],
    )
    (folder / "mmlu" / "test" / "algebra_test.csv").write_text(
        "What is 2+2?,3,4,5,6,B\nWhat is 1+0?,1,2,3,4,A\n"
    )
    (folder / "mmlu" / "dev" / "algebra_dev.csv").write_text("What is 1+1?,1,2,3,4,B\n")
    jsonl(
        "ARC-Challenge-Test.jsonl",
        [
            {
                "id": "q1",
                "question": {
                    "stem": "Which is a fruit?",
                    "choices": [{"text": "apple", "label": "A"}, {"text": "rock", "label": "B"}],
                },
                "answerKey": "A",
            },
        ],
    )
    jsonl(
        "winogrande_dev.jsonl",
        [
            {
                "sentence": "The cup fell off the table because _ was slippery.",
                "option1": "the cup",
                "option2": "the table",
                "answer": "2",
            },
        ],
    )
    jsonl(
        "hellaswag_val.jsonl",
        [
            {
                "ctx": "A man opens a door.",
                "endings": ["He walks in.", "The sky eats.", "Blue.", "No."],
                "label": "0",
                "activity_label": "Doors",
            },
        ],
    )
    jsonl(
        "race_high_test.jsonl",
        [
            {
                "article": "Ann went home.",
                "question": "Where did Ann go?",
                "options": ["home", "school", "park", "zoo"],
                "answer": "A",
            },
        ],
    )
    mbpp = [
        {
            "task_id": 1,
            "prompt": "Write a function add(a, b).",
            "code": "def add(a, b):\n    return a + b",
            "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
            "test_imports": [],
        }
    ]
    (folder / "mbpp_sanitized_427.json").write_text(json.dumps(mbpp))
    return folder
