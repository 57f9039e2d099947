"""Train one fastText model in a fresh process: `python -m frontload.curate.fasttext_train ARGS_JSON`.

fastText 0.9.2 keeps state between trainings in one process: a second `train_supervised` there
can differ from a first one on the same file and seed, or stop with "Encountered NaN". In a fresh
single-threaded process the same input and seed give a byte-identical model, so curation trains
its quality model here. Exit status 3 means the loss diverged (NaN): retry at a lower lr.
"""

from __future__ import annotations

import json
import sys

NAN_EXIT = 3


def main(argv: list[str]) -> int:
    import fasttext

    spec = json.loads(argv[0])
    out = spec.pop("out")
    try:
        model = fasttext.train_supervised(**spec)
    except RuntimeError as error:
        if "NaN" in str(error):
            return NAN_EXIT
        raise
    model.save_model(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
