"""``python -m custos.identity.trainer TABLE MODEL SAMPLE``: train a matching model on the Arrow
file ``TABLE`` (``sample`` rows at most) and write it as JSON to ``MODEL``. The process of its
own that :func:`custos.identity.matcher.train_apart` runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    """Train on ``argv``'s table and write the model."""
    import pyarrow.feather as feather

    from custos.identity.matcher import train

    table_path, model_path, sample = argv
    model = train(feather.read_table(table_path), sample=int(sample))
    Path(model_path).write_text(json.dumps(model))


if __name__ == "__main__":
    main(sys.argv[1:])
