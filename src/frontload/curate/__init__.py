"""Curation: raw dumps -> clean, deduplicated, decontaminated, scored pool -> corpora."""
