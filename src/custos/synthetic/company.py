"""A complete synthetic company: several data silos about the same (fictional) people."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from custos.synthetic.interactions import write_calls, write_consents, write_orders, write_social
from custos.synthetic.people import Person, PersonFactory
from custos.synthetic.records import write_crm, write_shop
from custos.synthetic.world import SiloFile, World, start, write_truth

__all__ = ["CompanyManifest", "SiloFile", "generate_company", "make_people"]

FAMILY_RATE = 0.015  # chance that the next person is a relative of an earlier one (~3% in families)


@dataclass(frozen=True)
class CompanyManifest:
    """What generate_company wrote: the silo files, the truth table and the broken rows."""

    out_dir: Path
    files: list[SiloFile]
    people: int
    truth_path: Path
    broken_rows: list[tuple[str, int]] = field(default_factory=list)

    def file(self, source: str, kind: str | None = None) -> SiloFile:
        """The silo file of a source (and kind, since "crm" has records and consents)."""
        for f in self.files:
            if f.source == source and (kind is None or f.kind == kind):
                return f
        raise KeyError(f"no silo file for source {source!r} kind {kind!r}")


def make_people(n: int, seed: int, rng: random.Random | None = None) -> list[Person]:
    """Draw n true persons; about 3% come in pairs sharing address and landline."""
    rng = rng if rng is not None else random.Random(seed)
    factory = PersonFactory(seed, rng)
    return _people(n, factory)


def _people(n: int, factory: PersonFactory) -> list[Person]:
    rng = factory.rng
    persons: list[Person] = []
    in_family: set[int] = set()
    for i in range(n):
        candidates = len(persons) - len(in_family)
        if candidates > 10 and rng.random() < FAMILY_RATE:
            j = rng.randrange(len(persons))
            while j in in_family:
                j = rng.randrange(len(persons))
            head = replace(persons[j], prefers_mobile=False)
            persons[j] = head
            persons.append(factory.person(i, family_of=head))
            in_family.update((j, i))
        else:
            persons.append(factory.person(i))
    return persons


def generate_company(out_dir: Path, *, people: int = 1500, seed: int = 7) -> CompanyManifest:
    """Write a synthetic multi-silo company into out_dir and return its manifest.

    Files: crm_customers.csv (+ crm.map.yaml), shop_customers.parquet,
    shop_orders.jsonl (+ orders.map.yaml), call_notes.csv (+ calls.map.yaml),
    social_posts.jsonl, consents.csv and truth.csv (source, record_id, person_id).
    The same seed always gives byte-identical files (for a given Faker version).
    """
    if people < 20:
        raise ValueError("generate_company needs at least 20 people")
    out, rng = start(out_dir, seed)
    factory = PersonFactory(seed, rng)
    world = World(out_dir=out, rng=rng, factory=factory, persons=_people(people, factory))
    crm, broken = write_crm(world)
    files = [crm, write_shop(world), write_orders(world), write_calls(world)]
    files += [write_social(world), write_consents(world)]
    truth_path = write_truth(out, world.truth)
    return CompanyManifest(
        out_dir=out, files=files, people=people, truth_path=truth_path, broken_rows=broken
    )
