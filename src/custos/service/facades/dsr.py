"""``custos.dsr``: data-subject requests (access, portability, erasure, rectification,
restriction), each a :class:`~custos.privacy.dsr.requests.Request` whose steps resume after a
failure."""

from __future__ import annotations

from custos.privacy.dsr import erasure, requests
from custos.privacy.dsr.requests import Request
from custos.service import dsr
from custos.service.facades.base import Facade, workflow


class DsrFacade(Facade):
    """Data-subject requests: ``custos.dsr.access(key, output=…)``, ``.export(…)``,
    ``.erase(key)``, ``.rectify(…)``, ``.restrict(key)``, ``.resume(ref)``, ``.get(ref)``,
    ``.requests()``."""

    access = workflow(dsr.access)
    export = workflow(dsr.export)
    erase = workflow(dsr.erase)
    rectify = workflow(dsr.rectify)
    restrict = workflow(dsr.restrict)
    resume = workflow(dsr.resume)

    def get(self, ref: str) -> Request:
        """A request (``dsr-12``) with its steps and result."""
        with self._app.store.read() as conn:
            return requests.load(conn, requests.parse_ref(ref))

    def requests(self, *, key: str | None = None, limit: int = 50) -> list[Request]:
        """Requests, newest first; with ``key``, those about that person."""
        with self._app.store.read() as conn:
            ids = erasure.profile_family(conn, self._app.profiles.find(key)) if key else None
            return list(requests.listing(conn, profile_ids=ids, limit=limit))
