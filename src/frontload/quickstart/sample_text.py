"""Text generators for the sample dump: word problems, long chains of thought, code, chat, web."""

from __future__ import annotations

import random

NAMES = [
    "Ava", "Liam", "Noah", "Mia", "Zoe", "Omar", "Priya", "Kenji", "Lucia", "Tomas", "Nadia",
    "Felix", "Hana", "Ravi", "Elena", "Marcus", "Ines", "Yusuf", "Greta", "Diego",
]  # fmt: skip
ITEMS = [
    ("apples", "basket"), ("pencils", "box"), ("stickers", "sheet"), ("cookies", "tray"),
    ("marbles", "bag"), ("books", "shelf"), ("eggs", "carton"), ("cupcakes", "box"),
    ("seeds", "packet"), ("bottles", "crate"), ("tiles", "row"), ("beads", "string"),
]  # fmt: skip
PLACES = ["the market", "a bakery", "the school fair", "a garden centre", "the library sale"]
SYNONYMS = {
    "bought": "purchased", "has": "owns", "gives": "hands", "each": "every", "total": "overall",
    "sells": "sold", "makes": "earns", "then": "afterwards", "How": "how", "many": "many",
    "buys": "gets", "needs": "requires", "spends": "uses", "left": "remaining",
}  # fmt: skip


def _pick(rng: random.Random, options: list):
    return options[rng.randrange(len(options))]


def _templates(kind: int, names, item, numbers, place: str):
    """(question, solution steps, answer) for one of several word-problem shapes."""
    a, b, c = numbers
    name, friend = names
    things, unit = item
    if kind == 0:
        q = (
            f"{name} has {a} {unit}s of {things} with {b} {things} in each {unit}. "
            f"{name} gives {c} {things} to {friend}. How many {things} does {name} have left?"
        )
        steps = [f"{name} starts with {a} * {b} = {a * b} {things}.",
                 f"After giving away {c}, {name} has {a * b} - {c} = {a * b - c} {things}."]  # fmt: skip
        return q, steps, a * b - c
    if kind == 1:
        q = (
            f"At {place}, {things} cost ${b} per {unit}. {name} buys {a} {unit}s and "
            f"pays with a ${a * b + c} bill. How much change does {name} get?"
        )
        steps = [f"The {unit}s cost {a} * {b} = ${a * b}.",
                 f"The change is {a * b + c} - {a * b} = ${c}."]  # fmt: skip
        return q, steps, c
    if kind == 2:
        q = (
            f"{name} reads {a} pages on Monday and {b} more pages on Tuesday than on Monday. "
            f"On Wednesday {name} reads {c} pages. How many pages did {name} read in total?"
        )
        steps = [f"On Tuesday {name} reads {a} + {b} = {a + b} pages.",
                 f"In total: {a} + {a + b} + {c} = {2 * a + b + c} pages."]  # fmt: skip
        return q, steps, 2 * a + b + c
    if kind == 3:
        q = (
            f"A farmer plants {a} rows of {things} with {b} plants in each row. A storm destroys "
            f"{c} plants, and {friend} replants half of the destroyed ones. How many plants are "
            f"there now?"
        )
        replanted = c // 2
        steps = [f"There were {a} * {b} = {a * b} plants.",
                 f"After the storm: {a * b} - {c} = {a * b - c}.",
                 f"{friend} replants {c} / 2 = {replanted}, so {a * b - c} + {replanted} = "
                 f"{a * b - c + replanted}."]  # fmt: skip
        return q, steps, a * b - c + replanted
    if kind == 4:
        q = (
            f"{name} saves ${a} every week for {b} weeks and then spends ${c} on a gift for "
            f"{friend}. How much money does {name} have after buying the gift?"
        )
        steps = [
            f"Savings: {a} * {b} = ${a * b}.",
            f"After the gift: {a * b} - {c} = ${a * b - c}.",
        ]
        return q, steps, a * b - c
    q = (
        f"A {unit} holds {b} {things}. {name} fills {a} {unit}s and {friend} fills {c} {unit}s. "
        f"How many {things} did they pack altogether?"
    )
    steps = [f"{name} packs {a} * {b} = {a * b}.", f"{friend} packs {c} * {b} = {c * b}.",
             f"Together: {a * b} + {c * b} = {a * b + c * b} {things}."]  # fmt: skip
    return q, steps, a * b + c * b


def _numbers(rng: random.Random) -> tuple[int, int, int]:
    a, b = rng.randint(3, 40), rng.randint(2, 25)
    return a, b, rng.randint(1, max(2, a * b // 2))


def _answer(steps: list[str], answer: int, style: float) -> str:
    """Worked solutions of uneven quality: full, terse, chatty, or with a wrong final step."""
    if style < 0.55:
        return "\n".join(steps) + f"\n#### {answer}"
    if style < 0.7:
        return f"The answer is {answer}.\n#### {answer}"
    if style < 0.9:
        chatty = "Let's work through this carefully, one quantity at a time."
        return (
            chatty + "\n" + "\n".join(steps) + f"\nSo the final answer is {answer}.\n#### {answer}"
        )
    wrong = answer + [-3, -1, 1, 2, 10][int(style * 100) % 5]
    return "\n".join(steps[:-1]) + f"\nSo it must be {wrong}.\n#### {wrong}"


def math_problem(rng: random.Random, numbers=None, shape=None) -> dict:
    """A GSM8K-layout record: question, and answer ending in '#### N'."""
    if shape is None:
        names = (_pick(rng, NAMES), _pick(rng, NAMES))
        shape = (rng.randrange(6), names, _pick(rng, ITEMS), _pick(rng, PLACES), rng.random())
    kind, names, item, place, style = shape
    question, steps, answer = _templates(kind, names, item, numbers or _numbers(rng), place)
    return {"question": question, "answer": _answer(steps, answer, style)}


def number_variant_pair(rng: random.Random) -> tuple[dict, dict]:
    """The same problem twice, differing only in its numbers (dedup must keep both)."""
    names = (_pick(rng, NAMES), _pick(rng, NAMES))
    shape = (rng.randrange(6), names, _pick(rng, ITEMS), _pick(rng, PLACES), rng.random())
    first, second = _numbers(rng), _numbers(rng)
    while second[:2] == first[:2]:
        second = _numbers(rng)
    return math_problem(rng, first, shape), math_problem(rng, second, shape)


def light_edit(text: str, rng: random.Random, words: int = 1) -> str:
    """Casing, spacing and punctuation changes plus a few swapped words (a paraphrase)."""
    tokens = text.split(" ")
    candidates = [i for i, token in enumerate(tokens) if token.strip(".,?!") in SYNONYMS]
    for index in rng.sample(candidates, k=min(words, len(candidates))):
        core = tokens[index].strip(".,?!")
        tokens[index] = tokens[index].replace(core, SYNONYMS[core])
    edited = " ".join(tokens)
    edited = edited.replace(". ", ".  ", 1).replace("?", " ?", 1)
    return edited[0].lower() + edited[1:] if rng.random() < 0.5 else edited.upper()[:1] + edited[1:]


def near_duplicate(original: dict, rng: random.Random) -> dict:
    """A paraphrase-level copy of a math record (same problem, same solution)."""
    return {
        "question": light_edit(original["question"], rng, words=2),
        "answer": original["answer"],
    }


# Invented GSM8K-like and HumanEval-like items: the sample's "benchmark", leaked into the dump.
BENCHMARK_MATH = [
    {"question": "Marisol bakes 48 muffins for the bake sale. She sells three quarters of them in "
                 "the morning and gives 5 of the rest to her neighbours. How many muffins does "
                 "Marisol have left at the end of the day?",
     "answer": "She sells 48 * 3/4 = 36 muffins, leaving 12. After giving 5 away she has 7.\n#### 7"},
    {"question": "A cyclist rides 18 kilometres every weekday and twice that distance on each day "
                 "of the weekend. How many kilometres does the cyclist ride in two full weeks?",
     "answer": "Weekdays: 5 * 18 = 90. Weekend: 2 * 36 = 72. One week: 162. Two weeks: 324.\n#### 324"},
    {"question": "The school orchestra has 64 members. One eighth of them play brass, 12 play "
                 "woodwinds and the rest play strings. How many members play strings?",
     "answer": "Brass: 64 / 8 = 8. Strings: 64 - 8 - 12 = 44.\n#### 44"},
    {"question": "Theo buys 7 notebooks at $3 each and 4 pens at $2 each. He pays with a $50 "
                 "note. How much change should Theo receive from the cashier?",
     "answer": "Notebooks: 21. Pens: 8. Total 29. Change: 50 - 29 = 21.\n#### 21"},
    {"question": "A water tank holds 1200 litres. It loses 35 litres a day to leaks and is "
                 "refilled with 200 litres every 10 days. How many litres are in the tank after "
                 "the first 10 days if it started full and was refilled on day 10?",
     "answer": "Loss: 10 * 35 = 350, so 850 remain. Refill: 850 + 200 = 1050.\n#### 1050"},
]  # fmt: skip
BENCHMARK_CODE = [
    {"prompt": "def running_maximum(values: list[int]) -> list[int]:\n    \"\"\"Return a list "
               "where element i is the largest value among values[0..i].\n    >>> "
               "running_maximum([1, 3, 2, 5, 4])\n    [1, 3, 3, 5, 5]\n    \"\"\"\n",
     "solution": "    result, best = [], None\n    for value in values:\n        best = value if "
                 "best is None else max(best, value)\n        result.append(best)\n    return result\n"},
    {"prompt": "def count_vowel_words(sentence: str) -> int:\n    \"\"\"Count the words in the "
               "sentence that start with a vowel, ignoring case.\n    >>> count_vowel_words("
               "'An owl eats every insect quickly')\n    4\n    \"\"\"\n",
     "solution": "    return sum(1 for word in sentence.split() if word[0].lower() in 'aeiou')\n"},
]  # fmt: skip

REASONING = [
    "First, let me restate what is being asked so that I do not solve the wrong problem.",
    "I will set up the quantities carefully before doing any arithmetic.",
    "Let me double check this step, because sign errors are easy to make here.",
    "An alternative approach is to work backwards from the final condition.",
    "Hmm, that does not look right; let me recompute the previous line.",
    "It helps to write the relationship as an equation and isolate the unknown.",
    "Now I can verify the partial result by substituting it back into the statement.",
    "Let me consider whether there is a symmetry that simplifies the counting.",
    "Before moving on, I should check the edge case where the value is zero.",
    "Wait, I should make sure the units are consistent across both expressions.",
]


def _reasoning_paragraph(rng: random.Random, step: int) -> str:
    x, y, z = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
    opener = _pick(rng, REASONING)
    calc = (
        f"In step {step}, multiplying {x} by {z} gives {x * z}, and adding {y} yields {x * z + y}. "
        f"Dividing {x * z + y} by {z} leaves a remainder of {(x * z + y) % z}, "
        f"which means the residue class is {(x * z + y) % z} modulo {z}."
    )
    check = rng.choice([
        f"Checking: {x * z + y} - {y} = {x * z}, consistent with {x} * {z}.",
        f"So the candidate value {x + y} satisfies the constraint only if {z} divides {x + y - z}.",
        f"The difference between {x} and {y} is {abs(x - y)}, so the ordering is as expected.",
        f"This matches the estimate of roughly {round((x * z + y) / 10) * 10} from before.",
    ])  # fmt: skip
    return f"{opener} {calc} {check}"


def long_cot(rng: random.Random, index: int, total: int) -> dict:
    """A MATH-layout record with a long chain of thought; a few exceed ~4k tokens."""
    a, b = rng.randint(10, 90), rng.randint(2, 12)
    problem = (
        f"Find the remainder when the sum of the first {a} positive multiples of {b} is divided "
        f"by {b + 5}. Justify each step of your reasoning."
    )
    answer = (b * a * (a + 1) // 2) % (b + 5)
    if index < max(2, total // 20):  # a few very long ones (> 4096 tokens)
        words = rng.randint(3600, 5200)
    elif rng.random() < 0.5:
        words = rng.randint(900, 2200)  # > 1024 tokens
    else:
        words = rng.randint(150, 700)
    paragraphs, count, step = [], 0, 1
    while count < words:
        paragraph = _reasoning_paragraph(rng, step)
        paragraphs.append(paragraph)
        count += len(paragraph.split())
        step += 1
    good = rng.random() < 0.6
    final = answer if good else (answer + rng.randint(1, 4)) % (b + 5)
    closing = (
        f"The sum is {b} * {a} * {a + 1} / 2 = {b * a * (a + 1) // 2}, and its remainder modulo "
        f"{b + 5} is {final}. Therefore the answer is \\boxed{{{final}}}."
    )
    if not good and rng.random() < 0.5:
        paragraphs = paragraphs[: max(1, len(paragraphs) // 3)]  # a sloppy, short attempt
    return {
        "problem": problem,
        "solution": "\n\n".join([*paragraphs, closing]),
        "answer": str(answer),
    }


CODE_TASKS = [
    ("sum_above", "Return the sum of the values in `values` that are greater than {k}.",
     "    return sum(v for v in values if v > {k})\n", lambda xs, k: sum(v for v in xs if v > k)),
    ("count_multiples", "Count how many values in `values` are multiples of {k}.",
     "    return sum(1 for v in values if v % {k} == 0)\n",
     lambda xs, k: sum(1 for v in xs if v % k == 0)),
    ("scaled_max", "Return the largest value of `values` multiplied by {k}.",
     "    return max(values) * {k}\n", lambda xs, k: max(xs) * k),
    ("clip_all", "Clip every value of `values` to at most {k} and return the new list.",
     "    return [min(v, {k}) for v in values]\n", lambda xs, k: [min(v, k) for v in xs]),
    ("shift_right", "Rotate `values` to the right by {k} positions.",
     "    shift = {k} % len(values)\n    return values[-shift:] + values[:-shift]\n",
     lambda xs, k: xs[-(k % len(xs)) :] + xs[: -(k % len(xs))] if k % len(xs) else list(xs)),
    ("mod_histogram", "Count the values of `values` by their remainder modulo {k}.",
     "    counts = {{}}\n    for v in values:\n        counts[v % {k}] = counts.get(v % {k}, 0) + 1\n"
     "    return counts\n", lambda xs, k: {r: sum(1 for v in xs if v % k == r)
                                       for r in sorted({v % k for v in xs})}),
]  # fmt: skip
CODE_VERBS = ["Write", "Implement", "Create", "Please write", "Give me"]


def code_task(rng: random.Random) -> dict:
    """A code instruction with a solution and a worked example (sometimes explained)."""
    name, doc, body, run = _pick(rng, CODE_TASKS)
    k = rng.randint(2, 60)
    example = [rng.randint(0, 120) for _ in range(rng.randint(4, 8))]
    function = f"{name}_{rng.randint(1, 9999)}"
    prompt = (
        f"{_pick(rng, CODE_VERBS)} a Python function `{function}(values)`. {doc.format(k=k)} "
        f"For example, {function}({example}) should return {run(example, k)}."
    )
    code = f"def {function}(values):\n{body.format(k=k)}"
    response = code
    if rng.random() < 0.5:
        response = (
            f"Here is an implementation:\n\n```python\n{code}```\n\nOn {example} it returns "
            f"{run(example, k)}, because the rule is applied to each of the {len(example)} values."
        )
    return {"prompt": prompt, "response": response}


SCIENCE = [
    ("Why does ice float on water?",
     "Ice is less dense than liquid water because hydrogen bonds hold the molecules in an open "
     "hexagonal lattice. Less dense solids float on denser liquids, so ice floats.",
     "A block of {a} cm3 of ice at about 0.92 g/cm3 has a mass of {r1} g, so it displaces {r1} g "
     "of water and about {r2} percent of it stays below the surface."),
    ("What does a catalyst do in a chemical reaction?",
     "A catalyst lowers the activation energy of a reaction by offering an alternative pathway. "
     "The reaction speeds up, and the catalyst is not consumed.",
     "If a reaction takes {a} minutes without a catalyst and the rate becomes {b} times faster, "
     "it finishes in about {r3} minutes."),
    ("How do vaccines train the immune system?",
     "A vaccine presents a harmless form of an antigen. B and T cells learn to recognise it, and "
     "memory cells let the body respond quickly to the real pathogen later.",
     "In a town of {a}00 people where {b} percent are vaccinated, about {r4} people are "
     "protected directly."),
    ("Why is the sky blue?",
     "Sunlight scatters off air molecules, and shorter blue wavelengths scatter much more than "
     "red ones (Rayleigh scattering), so blue light reaches our eyes from every direction.",
     "Scattering grows like 1/wavelength^4, so light at {a}0 nm scatters about {r5} times more "
     "than light at {b}0 nm."),
    ("What is the role of mitochondria?",
     "Mitochondria produce most of a cell's ATP through oxidative phosphorylation, turning the "
     "energy in nutrients into a form the cell can use.",
     "If one glucose molecule yields about 30 ATP, then {a} glucose molecules give about {r6} ATP "
     "and {b} molecules give {r7}."),
    ("Why do objects fall at the same rate in a vacuum?",
     "Gravitational force is proportional to mass, and so is inertia, so the acceleration g is "
     "the same for every object once air resistance is removed.",
     "Dropped from {a} m, any object reaches the ground after about {r8} s, whether it weighs "
     "{b} g or {b} kg."),
]  # fmt: skip
ASKS = ["Can you explain: ", "Quick question. ", "My teacher asked: ", "", "Help me understand: "]


def science_chat(rng: random.Random) -> dict:
    """A chat-format science exchange (system + user + assistant) with a worked number example."""
    question, answer, template = _pick(rng, SCIENCE)
    examples = []
    for _ in range(3):  # worked examples with their own numbers make each answer distinct
        a, b = rng.randint(2, 90), rng.randint(2, 40)
        examples.append(
            template.format(
                a=a, b=b, r1=round(a * 0.92, 1), r2=92, r3=round(a / b, 2), r4=a * b,
                r5=round((b / a) ** 4, 2), r6=30 * a, r7=30 * b, r8=round((2 * a / 9.81) ** 0.5, 2),
            )
        )  # fmt: skip
    example = " ".join(examples)
    level = _pick(rng, ["a high-school student", "a ten-year-old", "an exam", "a lab report"])
    return {"messages": [
        {"role": "system", "content": "You are a patient science tutor."},
        {"role": "user", "content": f"{_pick(rng, ASKS)}{question} Please pitch it at {level} "
                                    f"level and include a number example with {a} and {b}."},
        {"role": "assistant", "content": f"{answer} {example}"},
    ]}  # fmt: skip


WEB_TOPICS = ["gardening", "city cycling", "home baking", "budget travel", "birdwatching",
              "learning the piano", "composting", "trail running", "photography", "chess"]  # fmt: skip
WEB_SENTENCES = [
    "Many beginners underestimate how much {t} rewards patience and small daily habits.",
    "A local club reported {n} new members this season, most of them interested in {t}.",
    "Experts suggest starting with cheap equipment before investing in anything expensive.",
    "The most common mistake is trying to do too much in the first {n} days.",
    "Weather, time and budget all shape how people approach {t} in practice.",
    "Readers sent in {n} questions last month, and we answer the most frequent ones below.",
    "If you keep a simple notebook, progress becomes visible after a few weeks.",
    "Community forums are a good place to ask questions and share photos of your results.",
    "Some people combine {t} with other hobbies to stay motivated through the winter.",
    "Our guide from {y} remains popular, but several tips have changed since then.",
]


def web_page(rng: random.Random) -> dict:
    """A plain-text, web-like paragraph or two."""
    topic = _pick(rng, WEB_TOPICS)
    count = rng.randint(5, 12)
    sentences = [
        _pick(rng, WEB_SENTENCES).format(t=topic, n=rng.randint(3, 500), y=rng.randint(1998, 2024))
        for _ in range(count)
    ]
    title = f"{topic.title()}: notes #{rng.randint(1, 10**6)}"
    body = " ".join(sentences[: count // 2]) + "\n\n" + " ".join(sentences[count // 2 :])
    return {"text": f"{title}\n\n{body}"}
