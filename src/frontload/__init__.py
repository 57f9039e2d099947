"""frontload: decide where reasoning data goes in LLM training, then do it."""

__version__ = "0.1.0"
