"""Grading shared by curation, training and evaluation: answer extraction, math equivalence
(Math-Verify in a killable worker pool) and the sandbox that runs untrusted code."""
