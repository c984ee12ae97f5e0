"""custos.synthetic: deterministic synthetic customer data for demos, tests and benchmarks.

* :func:`generate_company` writes a small company with several messy silos (CRM CSV,
  web-shop Parquet, orders JSONL, call notes CSV, social posts JSONL, consents CSV)
  plus ``truth.csv`` mapping every record/interaction to its true person.
* :func:`write_people_csv` / :func:`iter_people_rows` stream millions of person
  records with duplicates for ingestion and matching benchmarks.

Everything is fictional: names and streets come from Faker vocabularies, numbers
are random. Output depends only on the arguments (and the installed Faker version).
"""

from custos.synthetic.bulk import PEOPLE_COLUMNS, iter_people_rows, write_people_csv
from custos.synthetic.company import CompanyManifest, generate_company, make_people
from custos.synthetic.people import Address, Person
from custos.synthetic.world import SiloFile

__all__ = [
    "PEOPLE_COLUMNS",
    "Address",
    "CompanyManifest",
    "Person",
    "SiloFile",
    "generate_company",
    "iter_people_rows",
    "make_people",
    "write_people_csv",
]
