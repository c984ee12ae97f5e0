"""The analyst's side of bench/release.py, run in a process of its own with ``PYTHONPATH`` at one
engine's ``src`` (this tree's, or a worktree of the commit before issue 20), so the same attack
runs against both: JSON commands on stdin, one JSON answer per line on stdout.

Commands: ``setup`` (ingest the clinic, resolve, consents), ``late`` (the late patient),
``release`` (a row release; what the engine's ``release()`` does not take is left out: the
engine before issue 20 computed ages on the run date, so its clock is set to the reference
date), ``aggregate`` (noisy counts; this tree only). Only ``custos`` APIs both engines have are
used here.
"""

from __future__ import annotations

import inspect
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def main() -> None:
    """Answer commands until stdin closes."""
    from custos.core.fields import Kind
    from custos.core.settings import Settings
    from custos.privacy.deid import Refused
    from custos.service import Custos
    from custos.service import release as engine

    app: Any = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        answer: dict[str, Any] = {}
        if op == "setup":
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                db=command["db"],
                secret_key_file=command["key"],
                taxonomy=command["taxonomy"],
            )
            app = Custos.open(command["db"], settings)
            app.ingest(Path(command["crm"]), "crm", map_path=Path(command["map"]))
            app.ingest(Path(command["visits"]), "clinic", map_path=Path(command["map"]))
            app.resolve()
            app.ingest(Path(command["consents"]), "crm", kind=Kind.CONSENTS)
        elif op == "late":
            app.ingest(Path(command["visits"]), "clinic", map_path=Path(command["map"]))
            app.resolve()
            app.ingest(Path(command["consents"]), "crm", kind=Kind.CONSENTS)
        elif op == "release":
            answer = _release(app, engine, Refused, command)
        elif op == "aggregate":
            from custos.service.aggregate import aggregate

            try:
                report = aggregate(
                    app,
                    purpose="health_research",
                    quasi_identifiers=command["qis"],
                    sensitive=["condition"],
                    output=Path(command["out"]),
                    epsilon=command["epsilon"],
                    levels=command["levels"],
                    source="clinic",
                    reference_date=date.fromisoformat(command["reference"]),
                    actor="bench",
                )
                answer = {"refused": False, "report": report.__dict__}
            except Refused:
                answer = {"refused": True}
        print(json.dumps(answer, default=str), flush=True)
    if app is not None:
        app.close()


def _release(app: Any, engine: Any, refused: type[Exception], command: dict[str, Any]) -> Any:
    """One row release with what this engine's ``release()`` takes."""
    reference = date.fromisoformat(command["reference"])
    taken = inspect.signature(engine.release).parameters
    kwargs: dict[str, Any] = {
        "purpose": "health_research",
        "quasi_identifiers": command["qis"],
        "sensitive": ["condition"],
        "k": 5,
        "l_div": 2,
        "output": Path(command["out"]),
        "source": "clinic",
        "actor": "bench",
    }
    if "reference_date" in taken:
        kwargs["reference_date"] = reference
    else:  # ages on the run date: the run date is the reference date

        class Clock(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime(reference.year, reference.month, reference.day, tzinfo=tz or UTC)

        engine.datetime = Clock
    if "linkable" in taken:
        kwargs["linkable"] = command["linkable"]
    try:
        report = engine.release(app, **kwargs)
    except refused:
        return {"refused": True}
    finally:
        engine.datetime = datetime
    return {
        "refused": False,
        "report": {
            "persons": report.persons,
            "suppressed_persons": report.suppressed_persons,
            "generalisation": report.generalisation,
            "risk": getattr(report, "risk", {}),
            # before issue 20 every release of a purpose had the same pseudonyms
            "linkable": command["linkable"] if "linkable" in taken else True,
            "topcoded": "reference_date" in taken,
        },
    }


if __name__ == "__main__":
    main()
