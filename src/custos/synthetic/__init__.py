"""custos.synthetic: deterministic synthetic customer data for demos, tests and benchmarks.

* :func:`generate_company` writes a small company with several messy silos (CRM CSV,
  web-shop Parquet, orders JSONL, call notes CSV, social posts JSONL, consents CSV)
  plus ``truth.csv`` mapping every record/interaction to its true person.
* :func:`write_people_csv` / :func:`iter_people_rows` stream millions of person
  records with duplicates for ingestion and matching benchmarks.
* :func:`generate_households` writes households (twins, a father and son of one name,
  couples, flatmates, families, singles) sharing an address and a landline into four silos,
  for the identity benchmark: which links join two people who only share a home?
* :func:`custos.synthetic.clinic.generate_clinic` writes a clinic (CRM persons, patients with
  conditions, a few rare, explicit health_research consent) for the release benchmark.
* :func:`split_silo` splits a silo file in two (every other row), for data that arrives in
  two parts (incremental runs).
* :func:`generate_multisilo` writes a seven-country company: a CRM with a country column,
  shop orders under second e-mails, call notes with national numbers and no country, and
  consent events, among them a withdrawal that only a typo'd order's e-mail carries.

Everything is fictional: names and streets come from Faker vocabularies, numbers
are random. Output depends only on the arguments (and the installed Faker version).
"""

from custos.synthetic.bulk import PEOPLE_COLUMNS, iter_people_rows, write_people_csv
from custos.synthetic.company import CompanyManifest, generate_company, make_people
from custos.synthetic.households import (
    HOUSEHOLD_KINDS,
    HouseholdManifest,
    Individual,
    generate_households,
)
from custos.synthetic.multisilo import MultiSiloManifest, PlantedWithdrawal, generate_multisilo
from custos.synthetic.people import Address, Person
from custos.synthetic.world import SiloFile, split_silo

__all__ = [
    "HOUSEHOLD_KINDS",
    "PEOPLE_COLUMNS",
    "Address",
    "CompanyManifest",
    "HouseholdManifest",
    "Individual",
    "MultiSiloManifest",
    "Person",
    "PlantedWithdrawal",
    "SiloFile",
    "generate_company",
    "generate_households",
    "generate_multisilo",
    "iter_people_rows",
    "make_people",
    "split_silo",
    "write_people_csv",
]
