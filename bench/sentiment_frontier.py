"""Benchmark: the accuracy/speed frontier of the sentiment engine over its layer count.

For each count of multilingual-e5-small's transformer layers run (4, 6, 8, 10 and all 12), the
English and German heads trained as ``scripts/train_sentiment.py --layers K`` trains them (12:
the shipped heads), scored on the held-out sets of ``bench/sentiment.py`` (each text in its
record's language), and the engine's CPU time per text over the held-out texts of at most 300
characters (one pass, language detection included, both cores). '2 free cores' is 2,000 ms
divided by the CPU time a text: the rate two idle cores would reach (the host is shared).

    python bench/sentiment_frontier.py [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

import train_sentiment  # noqa: E402

from bench.report import write_section  # noqa: E402
from bench.sentiment import SPEED_CHARS, Scores, by_language, fmt, scores  # noqa: E402
from bench.sentiment_sources import EVAL_SOURCES, Example, all_sources  # noqa: E402
from custos.insight.sentiment.e5_head import FULL_LAYERS, E5HeadEngine, Head, load_head  # noqa: E402

LAYERS = (4, 6, 8, 10, FULL_LAYERS)
#: (held-out set, language, metric) shown per layer count
COLUMNS = (
    ("uci-amazon", "en", "neg_pos"),
    ("uci-yelp", "en", "neg_pos"),
    ("goemotions-held-out", "en", "accuracy"),
    ("custos-notes-held-out", "en", "accuracy"),
    ("custos-notes-held-out", "de", "accuracy"),
    ("custos-de-service", "de", "accuracy"),
    ("sb10k-de", "de", "accuracy"),
)
TARGET_RATE = 200  # texts/s on two cores (issue 16)


def head_for(layers: int, sources: dict[str, list[Example]]) -> Head:
    """The shipped heads (all layers), or heads trained on ``layers`` layers as the training
    script would."""
    if layers == FULL_LAYERS:
        return load_head()
    trained = train_sentiment.train_language_heads(sources, layers)
    return train_sentiment.as_engine_head(trained, {"encoder_layers": layers})


def measure(
    layers: int, sources: dict[str, list[Example]]
) -> tuple[dict[tuple[str, str], Scores], float]:
    """Scores per (held-out set, language) and CPU ms a text for one layer count."""
    head = head_for(layers, sources)
    found: dict[tuple[str, str], Scores] = {}
    for name in EVAL_SOURCES:
        examples = sources[name]
        x = train_sentiment.embed([e.text for e in examples], layers=layers)
        p = head.probabilities(x, [e.language for e in examples])
        for language, rows in by_language(examples).items():
            found[(name, language)] = scores([examples[n].label for n in rows], p[rows])
    short = [e.text for name in EVAL_SOURCES for e in sources[name] if len(e.text) <= SPEED_CHARS]
    engine = E5HeadEngine(head=head)
    engine.score_batch(["warm up the model", "Modell aufwärmen, bitte"])
    start = time.process_time()
    engine.score_batch(short)
    return found, 1000 * (time.process_time() - start) / len(short)


def main() -> None:
    """Measure every layer count, print the table, write the BENCHMARKS.md section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    sources = all_sources()
    header = " | ".join(
        f"{name} {lang} {'neg vs pos' if m == 'neg_pos' else '3-class'}"
        for name, lang, m in COLUMNS
    )
    lines = [
        f"| layers | CPU ms/text | texts/s, 2 free cores | {header} |",
        "|---:|---:|---:|" + "---:|" * len(COLUMNS),
    ]
    texts = 0
    for layers in LAYERS:
        found, cpu = measure(layers, sources)
        texts = sum(s.n for s in found.values())
        cells = " | ".join(fmt(getattr(found[(name, lang)], m)) for name, lang, m in COLUMNS)
        lines.append(f"| {layers} | {cpu:.1f} | {2000 / cpu:,.0f} | {cells} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.no_write:
        return
    body = (
        "Each layer count's heads trained as `scripts/train_sentiment.py --layers K` trains them "
        "(12: the shipped heads), on the held-out sets of `bench/sentiment.py` "
        f"({texts:,} texts, each in its record's language); CPU time over the held-out texts of "
        f"at most {SPEED_CHARS} characters (one pass, detection included). 'texts/s, 2 free "
        "cores' = 2,000 / CPU ms a text. Review sentences: negative vs positive (they have no "
        "neutral gold); the rest: 3-class accuracy.\n\n"
        f"{table}\n\n"
        f"Issue 16 asks for {TARGET_RATE} texts/s on two cores and fast paths only where "
        "accuracy holds within about a point, per language and source: read across a row for "
        "what a layer count costs."
    )
    write_section("sentiment frontier", "python bench/sentiment_frontier.py", body)


if __name__ == "__main__":
    main()
