"""``python -m custos.identity.trainer SAMPLE``: train a matching model on the Arrow stream on
standard input (``SAMPLE`` rows at most) and write it as JSON on standard output. The process
of its own that :func:`custos.identity.matcher.train_apart` runs."""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    """Train on the table read from standard input and write the model."""
    import pyarrow as pa

    from custos.identity.matcher import train

    (sample,) = argv
    table = pa.ipc.open_stream(sys.stdin.buffer.read()).read_all()
    # Standard output carries the model alone: whatever training prints goes to standard error.
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    model = train(table, sample=int(sample))
    with os.fdopen(out, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(model))


if __name__ == "__main__":
    main(sys.argv[1:])
