from frontload.evaluate.extract import extract_answer, extract_choice, last_boxed


def test_boxed_is_brace_matched_and_last_wins():
    text = "first \\boxed{1} then \\boxed{\\frac{a}{b^{2}}} done"
    assert extract_answer(text).answer == "\\frac{a}{b^{2}}"
    assert extract_answer(text).rule == "boxed"
    assert last_boxed("\\fbox{7} and \\boxed 5$") == "5"


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
