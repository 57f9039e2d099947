"""General-knowledge tasks scored 0-shot by log-likelihood, in their published file formats:
ARC-Challenge (AI2 jsonl), HellaSwag (jsonl), WinoGrande (jsonl, partial scoring), RACE (jsonl)."""

from __future__ import annotations

import re

from frontload.evaluate.tasks.base import Sample, Task, check_mode, require

LETTERS = "ABCDEFGHIJ"


class LoglikTask(Task):
    category = "general"
    loglik = True
    chat_loglik = True
    normalize = True  # acc_norm: log-likelihood per character of the continuation

    def grade(self, samples, completions, workers: int = 2):
        return [self.grade_index(s, int(c)) for s, c in zip(samples, completions, strict=True)]


class ARCChallenge(LoglikTask):
    """{"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}; hub layout too."""

    name, version, filename = "arc_c", "1", "ARC-Challenge-Test.jsonl"
    hf_name, hf_config = "allenai/ai2_arc", "ARC-Challenge"

    def build(self, records, mode, shots, files):
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("question", "answerKey"), f"{self.name} record {index}")
            question = record["question"]
            if isinstance(question, dict):
                stem, choices = question["stem"], question["choices"]
                texts, labels = [c["text"] for c in choices], [c["label"] for c in choices]
            else:
                stem, texts, labels = (
                    question,
                    record["choices"]["text"],
                    record["choices"]["label"],
                )
            samples.append(
                Sample(
                    str(record.get("id", index)),
                    f"Question: {stem}\nAnswer:",
                    record["answerKey"],
                    choices=[f" {t}" for t in texts],
                    meta={"gold_index": labels.index(record["answerKey"])},
                )
            )
        return samples


def _clean_hellaswag(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


class HellaSwag(LoglikTask):
    """{"ctx" (or ctx_a + ctx_b), "endings", "label", "activity_label"}."""

    name, version, filename = "hellaswag", "1", "hellaswag_val.jsonl"
    hf_name, hf_split = "Rowan/hellaswag", "validation"

    def build(self, records, mode, shots, files):
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("endings", "label"), f"{self.name} record {index}")
            ctx = record.get("ctx") or f"{record['ctx_a']} {record['ctx_b'].capitalize()}"
            prompt = _clean_hellaswag(f"{record.get('activity_label', '')}: {ctx}")
            label = int(record["label"])
            samples.append(
                Sample(
                    str(record.get("ind", index)),
                    prompt,
                    label,
                    choices=[" " + _clean_hellaswag(e) for e in record["endings"]],
                    meta={"gold_index": label},
                )
            )
        return samples


class WinoGrande(LoglikTask):
    """{"sentence" with "_", "option1", "option2", "answer": "1"|"2"}: each option fills the blank
    and the rest of the sentence is scored (partial evaluation, as in the paper)."""

    name, version, filename = "winogrande", "1", "winogrande_dev.jsonl"
    hf_name, hf_config, hf_split = "allenai/winogrande", "winogrande_xl", "validation"
    normalize = False

    def build(self, records, mode, shots, files):
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(
                record, ("sentence", "option1", "option2", "answer"), f"{self.name} record {index}"
            )
            before, _, after = record["sentence"].partition("_")
            contexts = [before + record["option1"], before + record["option2"]]
            gold = int(record["answer"]) - 1
            samples.append(
                Sample(
                    str(record.get("qID", index)),
                    contexts[gold],
                    gold,
                    choices=[" " + after.strip(), " " + after.strip()],
                    meta={"gold_index": gold, "contexts": contexts},
                )
            )
        return samples


class RACE(LoglikTask):
    """{"article", "question", "options", "answer" (letter)} (hub/JSON layout, one question each)."""

    name, version, filename = "race", "1", "race_high_test.jsonl"
    hf_name, hf_config = "ehovy/race", "high"

    def build(self, records, mode, shots, files):
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(
                record, ("article", "question", "options", "answer"), f"{self.name} record {index}"
            )
            prompt = f"Article: {record['article']}\n\nQuestion: {record['question']}\nAnswer:"
            gold = LETTERS.index(record["answer"].strip())
            samples.append(
                Sample(
                    str(record.get("example_id", index)),
                    prompt,
                    record["answer"],
                    choices=[f" {o}" for o in record["options"]],
                    meta={"gold_index": gold},
                )
            )
        return samples
