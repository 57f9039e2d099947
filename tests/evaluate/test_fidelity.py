"""Math-grading fidelity on cases built from the benchmark answer keys (counts asserted)."""

from tests.evaluate.fidelity import build_cases, gold_answers, grade_with_fl, tally


def test_fidelity_suite_on_the_benchmark_answer_keys(bench_files):
    cases = build_cases(gold_answers(bench_files, per_file=4))
    counts = tally(cases, grade_with_fl(cases))
    assert counts == {
        "equivalent": {"cases": 56, "fn": 0, "fp": 0},
        "gold": {"cases": 20, "fn": 0, "fp": 0},
        "near:other_number": {"cases": 52, "fn": 0, "fp": 0},
        "near:scale_word": {"cases": 36, "fn": 0, "fp": 0},
        "near:times_variable": {"cases": 144, "fn": 0, "fp": 0},
        "style": {"cases": 120, "fn": 0, "fp": 0},
    }


def test_number_times_variable_golds_and_rounded_forms():
    golds = [("hand", g) for g in ("6x", "292i", "2k", "4\\pi", "\\frac{1}{3}", "1200", "0.25")]
    cases = build_cases(golds)
    counts = tally(cases, grade_with_fl(cases))
    # a bare number never matches a gold that is a number times a variable, and back
    assert counts["near:times_variable"] == {"cases": 4 + 3 * 8, "fn": 0, "fp": 0}
    assert counts["equivalent"]["fn"] == 0 and counts["equivalent"]["cases"] == 3 + 4 + 3
    assert counts["style"] == {"cases": 7 * 6, "fn": 0, "fp": 0}
    assert all(c["fp"] == 0 for c in counts.values())
