from frontload.grading.extract import extract_answer, extract_choice, last_boxed


def test_boxed_is_brace_matched_and_last_wins():
    text = "first \\boxed{1} then \\boxed{\\frac{a}{b^{2}}} done"
    assert extract_answer(text).answer == "\\frac{a}{b^{2}}"
    assert extract_answer(text).rule == "boxed"
    assert last_boxed("\\fbox{7} and \\boxed 5$") == "5"
    assert last_boxed("so $\\boxed{69}$, $\\boxed{84}$") == "69, 84"  # several boxes, one answer
    assert last_boxed("first \\boxed{2}. Then \\boxed{7}") == "7"


def test_unclosed_box_falls_through_to_other_rules():
    found = extract_answer("so \\boxed{12 and then it stopped. The answer is 7.")
    assert (found.answer, found.rule) == ("7", "answer_is")


def test_rule_order():
    assert extract_answer("The answer is $\\frac{\\pi}{2}$. I hope").answer == "\\frac{\\pi}{2}"
    assert extract_answer("work\n#### 1,080").answer == "1080"
    assert extract_answer("work\n#### 1,080").rule == "gsm8k"
    found = extract_answer("we get 3 and then -4.5 apples")
    assert (found.answer, found.rule) == ("-4.5", "last_number")
    assert extract_answer("").rule == "none"
    assert extract_answer("no numbers here").answer is None


def test_answer_is_prefers_the_last_statement():
    text = "The answer is 3. Wait, recheck. So the answer is: 5\nextra"
    assert extract_answer(text).answer == "5"


def test_choice_letters():
    assert extract_choice("Thinking... The answer is (C).", "ABCD").answer == "C"
    assert extract_choice("\\boxed{B}", "ABCD").answer == "B"
    assert extract_choice("I pick D", "ABCD").answer == "D"
    assert extract_choice("The answer is (J)", "ABCD").answer is None


def test_prose_after_answer_is_falls_through_to_the_last_number():
    found = extract_answer(
        "At first the answer is not obvious to me at all. Counting gives 12 in the end"
    )
    assert (found.answer, found.rule) == ("12", "last_number")
    assert extract_answer("The answer is Evelyn.").answer == "Evelyn"


def test_answer_styles_of_the_issue():
    cases = {
        "Adding up.\n\n**Answer:** $\\frac{3}{4}$": ("\\frac{3}{4}", "answer_line"),
        "So it halves.\nAnswer: \\frac{1}{2}": ("\\frac{1}{2}", "answer_line"),
        "The final answer is $\\$40$. I hope it is correct.": ("40", "answer_is"),
        "The answer is $69$, $84$.": ("69, 84", "answer_is"),
        "The answer is 42": ("42", "answer_is"),
        "Final Answer: The final answer is $[2,5)$. I hope it is correct.": ("[2,5)", "answer_is"),
        "### Final answer: 17 apples": ("17 apples", "answer_line"),
    }
    for text, expected in cases.items():
        found = extract_answer(text)
        assert (found.answer, found.rule) == expected, text


def test_choice_explicit_patterns_win_over_later_letters():
    assert extract_choice("**Answer: D**\n\nA quick check confirms it.").answer == "D"
    assert extract_choice("Choice (B) is right").answer == "B"  # not the C of "Choice"
    assert extract_choice("Clearly Bob is right, so (c).").answer == "C"
    assert extract_choice("The answer is (b)").answer == "B"
    assert extract_choice("answer: \\boxed{\\text{(D)}}").answer == "D"
    assert extract_choice("A quick look: nothing fits").answer is None
    assert extract_choice("The correct option is E", "ABCDEFGHIJ").answer == "E"
    assert extract_choice("Between A and C, I pick C").answer == "C"


def test_choice_article_a_after_answer_is_is_not_option_a():
    assert extract_choice("So the answer is a prime number, thus B").answer == "B"
    assert extract_choice("the answer is a").answer == "A"
    assert extract_choice("Answer: a) because it grows").answer == "A"
    assert extract_choice("The answer is (a) since it grows").answer == "A"
    assert extract_choice("I think A is wrong; the answer is C").answer == "C"
    assert extract_choice("Answer: B) because").answer == "B"
