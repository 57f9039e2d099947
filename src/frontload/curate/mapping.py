"""Raw record -> schema fields: prompt/response/text/messages/reference, the reasoning trace split
from the final answer, one record per generation of an exploded row, and the `meta` column.

Every problem with one record raises `RecordError` naming the field; the reader turns it into a
`Malformed` row with file and line.
"""

from __future__ import annotations

import json
from typing import Any

from frontload.curate.recipe import FieldMap, SourceConfig


def gsm8k_reference(answer: str) -> str | None:
    """GSM8K: the final answer is the text after the last `####`."""
    if "####" not in answer:
        return None
    return answer.rsplit("####", 1)[1].strip().replace(",", "") or None


def last_boxed(text: str) -> str | None:
    """MATH: the content of the last \\boxed{...} (or \\fbox{...}), braces matched."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    index = text.index("{", start) + 1
    depth, begin = 1, index
    while index < len(text):
        char = text[index]
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return text[begin:index].strip()
        index += 1
    return None


class RecordError(ValueError):
    """A raw record lacks a mapped field or holds a value of the wrong kind."""


def _string(raw: dict[str, Any], field: str) -> str:
    if field not in raw:
        raise RecordError(f"field {field!r} missing")
    value = raw[field]
    if value is None:
        raise RecordError(f"field {field!r} is null")
    if isinstance(value, (dict, list)):
        raise RecordError(f"field {field!r} is a {type(value).__name__}, not text")
    return str(value)


def _trace(raw: dict[str, Any], field: str) -> str:
    """A reasoning field: text, or a list of texts (s1K's `thinking_trajectories`) joined."""
    value = raw.get(field)
    if value is None:
        raise RecordError(f"field {field!r} missing or null")
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "\n\n".join(value)
    if isinstance(value, (dict, list)):
        raise RecordError(f"field {field!r} is a {type(value).__name__}, not text")
    return str(value)


def _messages(raw: dict[str, Any], mapping: FieldMap) -> list[dict[str, str]]:
    """Chat turns under any key names (ShareGPT `from`/`value` too), roles mapped by `roles`."""
    field, role_key, content_key = mapping.messages or "", mapping.role_key, mapping.content_key
    if raw.get(field) is None:
        raise RecordError(f"field {field!r} missing or null")
    turns = raw[field]
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field {field!r} is not a non-empty list of turns")
    messages = []
    if mapping.system and raw.get(mapping.system):
        messages.append({"role": "system", "content": str(raw[mapping.system])})
    for index, turn in enumerate(turns):
        if (
            not isinstance(turn, dict)
            or turn.get(role_key) is None
            or turn.get(content_key) is None
        ):
            raise RecordError(f"field {field!r}[{index}] needs {role_key} and {content_key}")
        role = str(turn[role_key])
        messages.append({"role": mapping.roles.get(role, role), "content": str(turn[content_key])})
    return messages


def split_reasoning(
    text: str, tags: tuple[str, str], answer_tags: tuple[str, str] | None = None
) -> tuple[str | None, str]:
    """(trace, final answer) of a response holding `<think>trace</think>answer` (tags as given);
    (None, text) when it holds no trace. A closing tag alone (the opening one was in the prompt)
    ends a trace too; an unclosed trace leaves an empty answer."""
    start, end = tags
    close = text.find(end)
    open_ = text.find(start)
    if close < 0 and open_ < 0:
        return None, _unwrap(text, answer_tags)
    if close < 0:
        return text[open_ + len(start) :].strip(), ""
    begin = open_ + len(start) if 0 <= open_ < close else 0
    before = text[:open_] if 0 <= open_ < close else ""
    answer = (before + text[close + len(end) :]).strip()
    return text[begin:close].strip(), _unwrap(answer, answer_tags)


def _unwrap(text: str, tags: tuple[str, str] | None) -> str:
    """The text between the answer tags, when the answer is wrapped in them."""
    if tags is None or tags[0] not in text:
        return text
    inner = text.split(tags[0], 1)[1]
    return inner.split(tags[1], 1)[0].strip()


def with_trace(reasoning: str | None, answer: str) -> str:
    """An answer with its trace as pretraining sees it: one `<think>` block, whatever the source's
    tags were."""
    if not reasoning:
        return answer
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


def render(prompt: str, response: str, reasoning: str | None = None) -> str:
    """The text pretraining sees for a QA record."""
    return f"{prompt}\n\n{with_trace(reasoning, response)}"


def map_record(raw: dict[str, Any], mapping: FieldMap) -> dict[str, Any]:
    """Raw dict -> prompt/response/reasoning/text/messages/reference; raises RecordError naming
    the field. A `<think>` trace in the response (or a mapped reasoning field) goes to
    `reasoning`, the final answer stays in `response`."""
    messages, reasoning = None, None
    if mapping.messages:
        messages = _messages(raw, mapping)
    if mapping.prompt and mapping.response:
        prompt = _string(raw, mapping.prompt)
        response = _string(raw, mapping.response)
    elif messages is not None:
        users = [m["content"] for m in messages if m["role"] == "user"]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        prompt = users[0] if users else ""
        response = answers[-1] if answers else ""
    else:
        prompt, response = "", ""
    if mapping.reasoning:
        reasoning = _trace(raw, mapping.reasoning)
    elif response:
        reasoning, response = split_reasoning(response, mapping.think_tags, mapping.answer_tags)
    if messages is not None and reasoning is not None:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        if last >= 0:
            messages[last] = {"role": "assistant", "content": response}
    if mapping.text:
        text = _string(raw, mapping.text)
    elif mapping.prompt or messages is None:
        text = render(prompt, response, reasoning)
    else:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        text = "\n\n".join(
            with_trace(reasoning, m["content"]) if i == last else m["content"]
            for i, m in enumerate(messages)
            if m["role"] != "system"
        )
    reference = None
    if mapping.reference_rule == "field" and mapping.reference:
        value = raw.get(mapping.reference)
        reference = None if value is None else str(value)
    elif mapping.reference_rule == "gsm8k":
        reference = gsm8k_reference(response)
    elif mapping.reference_rule == "boxed":
        reference = last_boxed(response)
    return {
        "prompt": prompt,
        "response": response,
        "reasoning": reasoning,
        "text": text,
        "messages": messages,
        "reference": reference,
    }


def _label(value: Any) -> bool | None:
    """A per-generation label: true/false (also 1/0, "true"/"false"); null stays unknown."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "false": False, "1": True, "0": False}.get(text)


def map_records(
    raw: dict[str, Any], source: SourceConfig, group: str, mapping: FieldMap | None = None
) -> list[tuple[dict[str, Any], bool]]:
    """(record, keep) pairs for one raw row: one record, or one per element of the exploded list.
    `group` names the row, so exploded siblings share it in `meta`; `keep` is False for a
    generation the source's `siblings: verified` policy drops (labelled false). Pass `mapping`
    (`source.mapping()`) when reading many rows: building it is the costly part."""
    mapping = mapping or source.mapping()
    meta: dict[str, Any] = {}
    if mapping.id:
        meta["id"] = raw.get(mapping.id)
    for name in source.keep:
        meta[name] = raw.get(name)
    if not mapping.explode:
        return [(_with_meta(map_record(raw, mapping), meta), True)]
    items = raw.get(mapping.explode)
    if not isinstance(items, list) or not items:
        raise RecordError(f"field {mapping.explode!r} is not a non-empty list (explode)")
    labels: list[Any] = [None] * len(items)
    if mapping.labels and raw.get(mapping.labels) is not None:  # null: every label unknown
        labels = raw[mapping.labels]
        if not isinstance(labels, list) or len(labels) != len(items):
            raise RecordError(
                f"field {mapping.labels!r} does not hold one label per {mapping.explode!r} item"
            )
    out = []
    for index, (item, value) in enumerate(zip(items, labels, strict=True)):
        label = _label(value)
        record = map_record({**raw, mapping.explode: item}, mapping)
        if label is not None:
            record["verified"] = label
        sibling = {"generation": index}
        if source.siblings != "dedup":
            sibling["group"] = group
        keep = source.siblings != "verified" or not mapping.labels or label is True
        out.append((_with_meta(record, {**meta, **sibling}), keep))
    return out


def _with_meta(record: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    record["meta"] = json.dumps(meta, default=str, ensure_ascii=False) if meta else None
    return record
