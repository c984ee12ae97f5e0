"""Train the matching model that ships with custos (``src/custos/identity/default_model.json``).

It is the starting point of every training run and the model of stores too small to train on.
Reproducible: the package's own synthetic data (seeded), ingested and trained without labels:
people with duplicates in one silo, households (families, twins, flatmates, each person in
several silos) and a multi-silo company (a CRM, orders under second e-mails, call notes with
national numbers), so that it has seen nicknames, initials, shared landlines and interactions.
The seeds differ from those of the benchmark's data sets.

    python scripts/train_default_model.py [--people 60000] [--households 3000] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.identity import matcher
from custos.identity.loading import match_table
from custos.service import Custos
from custos.synthetic import generate_households, generate_multisilo, write_people_csv


def main() -> None:
    """Generate, ingest, train, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=60_000)
    parser.add_argument("--households", type=int, default=3000)
    parser.add_argument(
        "--company", type=int, default=6000, help="people of the multi-silo company"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "people.csv"
        write_people_csv(csv, args.people, seed=args.seed)
        silos = [
            *generate_households(
                Path(tmp) / "households", households=args.households, seed=args.seed + 101
            ).files,
            *generate_multisilo(
                Path(tmp) / "company", people=args.company, seed=args.seed + 103
            ).files,
        ]
        url = str(Path(tmp) / "custos.db")
        with Custos.open(url, Settings(db=url)) as app:
            app.ingest(csv, "people", actor="train")
            for silo in silos:
                if silo.kind != "consents":
                    app.ingest(
                        silo.path,
                        f"{silo.path.parent.name}-{silo.source}",
                        kind=Kind(silo.kind),
                        map_path=silo.map_path,
                        actor="train",
                    )
            with app.store.read() as conn:
                table = match_table(conn)
    model = matcher.train(table, seed=args.seed, from_defaults=False)
    model["custos_trained_on"] = f"{table.num_rows} synthetic records, seed {args.seed}"
    matcher.DEFAULT_MODEL.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
    print(f"wrote {matcher.DEFAULT_MODEL} from {table.num_rows} records")


if __name__ == "__main__":
    main()
