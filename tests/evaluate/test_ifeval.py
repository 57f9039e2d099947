import json

from tests.evaluate.helpers import build

from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.ifeval import follows


def test_checkers_accept_and_reject():
    assert follows("punctuation:no_comma", "no commas here", {}, "")
    assert not follows("punctuation:no_comma", "one, two", {}, "")
    assert follows(
        "length_constraints:number_words", "a b c", {"relation": "less than", "num_words": 4}, ""
    )
    assert not follows(
        "length_constraints:number_words", "a b c d", {"relation": "less than", "num_words": 4}, ""
    )
    assert follows("detectable_format:json_format", '```json\n{"a": 1}\n```', {}, "")
    assert not follows("detectable_format:json_format", "{a: 1}", {}, "")
    assert follows(
        "detectable_format:number_bullet_lists", "* a\n* b\ntext", {"num_bullets": 2}, ""
    )
    assert follows("keywords:forbidden_words", "a cat", {"forbidden_words": ["dog"]}, "")
    assert not follows("keywords:forbidden_words", "a Dog", {"forbidden_words": ["dog"]}, "")
    assert follows("combination:two_responses", "one\n******\ntwo", {}, "")
    assert not follows("combination:two_responses", "same\n******\nsame", {}, "")
    assert follows("language:response_language", "hola", {"language": "es"}, "") is None


def test_prompt_level_strict_accuracy(tmp_path):
    rows = [
        {
            "key": 1,
            "prompt": "Write in lowercase without commas.",
            "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
            "kwargs": [{}, {}],
        },
        {
            "key": 2,
            "prompt": "Answer in Spanish.",
            "instruction_id_list": ["language:response_language"],
            "kwargs": [{"language": "es"}],
        },
    ]
    (tmp_path / "ifeval_input_data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task("ifeval")
    samples = build(task, tmp_path, "chat", None)
    graded = task.grade(samples * 2, ["all lowercase here", "hola", "Capital, comma", ""])
    assert [g.verdict for g in graded] == ["passed", "failed", "failed", "failed"]
    assert "no checker for language:response_language" in graded[1].detail
    assert graded[2].answer == "0/2"
