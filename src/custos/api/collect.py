"""The collection API, wire-compatible with Segment's HTTP Tracking API.

``POST /v1/identify|track|page|screen|group|alias|batch``, authenticated by a write key sent as
the body's ``writeKey`` (the Segment Python client), HTTP Basic with the key as user name (older
Segment clients, RudderStack) or a Bearer token. Bodies may be gzip-compressed. A request is
answered 200 only once every call in it is durably stored (or quarantined with its reason); a
resend is recognised by ``messageId`` and stored once. Requests are read and normalised in
parallel and written by one writer thread, several per transaction (group commit, see
:mod:`custos.api.writer`).
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from custos.api.auth import collection_key
from custos.api.deps import Credentials, custos_of
from custos.api.errors import ApiError, answers
from custos.api.writer import GroupWriter
from custos.service import collect as service
from custos.service.app import Custos

router = APIRouter(prefix="/v1", tags=["collect"])
#: Requests of at most this many calls are prepared on the event loop (about 1 ms of work),
#: larger ones in the thread pool.
INLINE_CALLS = 200


class Gate:
    """Counts the collection requests in flight; past the limit, callers are told to retry."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    def enter(self) -> None:
        """Take a place, or refuse with 429 and Retry-After."""
        if self.busy >= self.limit:
            raise ApiError(
                429,
                "too many collection requests at once",
                hint="retry after the number of seconds in Retry-After",
                headers={"Retry-After": "1"},
            )
        self.busy += 1

    def leave(self) -> None:
        """Give the place back."""
        self.busy -= 1


async def _body(request: Request, limit: int) -> tuple[dict[str, Any], int]:
    """The body as a JSON object, and its size unzipped. Its size as sent is limited while it
    streams in (see :class:`custos.api.limits.Limits`); here, unzipped, it is held to the same
    limit."""
    raw = await request.body()
    if "gzip" in request.headers.get("content-encoding", "").lower():
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise ApiError(400, "the body is not valid gzip") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise ApiError(
                413,
                f"the request body is larger than {limit} bytes (unzipped)",
                hint="send smaller requests (split a batch)",
            )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body, len(raw)


#: The SDK families and their limits. Segment's HTTP Tracking API takes calls of at most 32 KB
#: in requests of at most 500 KB; RudderStack's gateway takes requests of up to 4 MB
#: (rudder-server ``Gateway.maxReqSizeInKB``) and no smaller limit per call.
SEGMENT, RUDDERSTACK = "segment", "rudderstack"


def family(request: Request, calls: list[tuple[str, dict[str, Any]]]) -> str:
    """Which SDK family sent a request: RudderStack when its calls carry RudderStack's marks (a
    top-level ``channel`` or ``rudderId``, a library or user agent named rudder), else
    Segment."""
    if "rudder" in request.headers.get("user-agent", "").lower():
        return RUDDERSTACK
    for _, message in calls[:8]:
        if "channel" in message or "rudderId" in message:
            return RUDDERSTACK
        context = message.get("context")
        library = context.get("library") if type(context) is dict else None
        name = library.get("name") if type(library) is dict else None
        if type(name) is str and "rudder" in name.lower():
            return RUDDERSTACK
    return SEGMENT


def _calls(kind: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The calls of a request ``(type, message)``; a batch's own ``context`` and
    ``integrations`` apply to each of its calls (a call's own keys win)."""
    if kind != "batch":
        return [(kind, body)]
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise ApiError(400, "batch must be a list of JSON objects")
    shared = {
        name: value
        for name in ("context", "integrations")
        if isinstance(value := body.get(name), dict) and value
    }
    calls = []
    for message in batch:
        if type(message) is not dict:
            raise ApiError(400, "batch must be a list of JSON objects")
        if shared:
            message = dict(message)
            for name, value in shared.items():
                own = message.get(name)
                message[name] = {**value, **own} if type(own) is dict else dict(value)
        call = message.get("type")
        calls.append((call.lower() if type(call) is str else str(call or "").lower(), message))
    return calls


def _encoded(
    kind: str, calls: list[tuple[str, dict[str, Any]]], max_event: int
) -> tuple[list[bytes], dict[int, str]]:
    """Each message as JSON (the store keeps it as the verbatim record), with its fields' and
    its own size checked: the calls of a batch larger than ``max_event`` bytes, by position,
    with the reason they are quarantined (a single call that large is refused with 400)."""
    for index, (_, message) in enumerate(calls):
        for field, most in _LIMITED.items():
            value = message.get(field)
            if type(value) is str and len(value) > most:
                where = f"{field} of call {index}" if kind == "batch" else field
                raise ApiError(
                    400,
                    f"{where} is longer than {most} characters",
                    hint=f"send {field} of at most {most} characters",
                )
    try:
        encoded = [orjson.dumps(message) for _, message in calls]
    except orjson.JSONEncodeError:  # nested past orjson's depth limit (254 levels)
        raise ApiError(
            400,
            "a call is nested too deeply",
            hint="send JSON arrays and objects at most 254 levels deep",
        ) from None
    too_large = {
        i: f"the call is {len(e)} bytes, more than the {max_event} bytes a call may have"
        for i, e in enumerate(encoded)
        if len(e) > max_event
    }
    if too_large and kind != "batch":
        raise ApiError(
            400,
            f"the call is larger than {max_event} bytes",
            hint="send less in properties, traits and context",
        )
    return encoded, too_large


async def _prepare(
    request: Request,
    kind: str,
    custos: Custos,
    read: tuple[dict[str, Any], int],
    received_at: datetime,
) -> service.Prepared:
    """Authenticate, check and normalise one request (``read``: its JSON and its size unzipped),
    ready for the writer. The limits are those of the SDK family that sent it (see
    :func:`family`)."""
    body, size = read
    settings = custos.settings
    # Inline, not in the thread pool: a key look-up is one indexed read, cheaper than the
    # hand-over to a thread and back.
    key = collection_key(custos, request, body.get("writeKey"))
    calls = _calls(kind, body)
    if family(request, calls) == RUDDERSTACK:
        max_event = settings.collect_max_batch_bytes
    else:
        if size > settings.collect_segment_max_batch_bytes:
            raise ApiError(
                413,
                f"the request body is larger than {settings.collect_segment_max_batch_bytes} "
                "bytes (Segment's limit per request)",
                hint="send smaller requests (split a batch)",
            )
        max_event = settings.collect_max_event_bytes
    encoded, too_large = _encoded(kind, calls, max_event)
    headers = {k: v for k, v in request.headers.items() if k.lower() == "sec-gpc"}
    job = service.CollectRequest(
        calls,
        key.name,
        received_at,
        body.get("sentAt"),
        headers,
        encoded,
        key.verified,
        too_large,
        user_is_customer=key.user_id_field == "customer_id",
    )
    # Reading and normalising needs no store. A request of a few hundred calls is read here,
    # on the event loop: handing it to a thread and back costs more CPU than the reading (the
    # GIL lets one thread run at a time anyway). A larger one goes to the thread pool, so
    # that the loop keeps answering meanwhile.
    if len(calls) <= INLINE_CALLS:
        return service.prepare(custos, [job])
    return await run_in_threadpool(service.prepare, custos, [job])


async def _collect(request: Request, kind: str) -> Response:
    custos: Custos = custos_of(request)
    gate: Gate = request.app.state.collect_gate
    writer: GroupWriter = request.app.state.collect_writer
    received_at = service.utcnow()
    # The body is read before a place is taken: a client that sends it slowly holds its own
    # connection (until the body deadline of custos.api.limits), never a place of the gate.
    body = await _body(request, custos.settings.collect_max_batch_bytes)
    gate.enter()
    try:
        prepared = await _prepare(request, kind, custos, body, received_at)
        result = await writer.write(prepared)  # returns once committed
    finally:
        gate.leave()
    return Response(
        orjson.dumps(
            {
                "success": True,
                "received": result.received,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "quarantined": result.quarantined,
                "consent_events": result.consent_events,
                "consent_problems": result.consent_problems,
                "fields_dropped": result.fields_dropped,
            }
        ),
        media_type="application/json",
    )


_TEXT_LIMIT = 200
_TEXT = {"type": "string", "maxLength": _TEXT_LIMIT}
_CALL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(service.CALL_TYPES)},
        "messageId": {
            "type": "string",
            "description": "Compared exactly; any length (one longer than 200 characters is "
            "stored as sha256: and its digest, the raw call keeps it).",
        },
        "userId": _TEXT,
        "anonymousId": {"type": ["string", "null"], "maxLength": _TEXT_LIMIT},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "event": _TEXT,
        "name": _TEXT,
        "previousId": _TEXT,
        "groupId": _TEXT,
        "traits": {"type": "object"},
        "properties": {"type": "object"},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "writeKey": {"type": "string", "description": "The write key (or send it as auth)."},
    },
}

#: The fields held to the schema's length limit, and their limits (checked by _encoded).
_LIMITED: dict[str, int] = {
    name: spec["maxLength"] for name, spec in _CALL["properties"].items() if "maxLength" in spec
}
#: The paths of the collection routes (their bodies have the collection size limit).
KINDS = (*service.CALL_TYPES, "batch")
PATHS = frozenset(f"/v1/{kind}" for kind in KINDS)


class Collected(BaseModel):
    """What a collection request answers once its calls are durable (more fields may come)."""

    model_config = ConfigDict(extra="allow")  # documented: additionalProperties true

    success: bool
    received: int
    stored: int
    duplicates: int
    quarantined: int
    consent_events: int
    #: consent signals of stored calls that could not be read (each listed in the quarantine)
    consent_problems: int
    #: fields left out of stored calls (an unreadable timestamp, …; listed in the quarantine)
    fields_dropped: int


def _body_schema(kind: str) -> dict[str, Any]:
    if kind != "batch":
        return _CALL
    return {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": _CALL},
            "sentAt": {"type": "string", "format": "date-time"},
            "context": {"type": "object", "description": "Applies to each call of the batch."},
            "integrations": {
                "type": "object",
                "description": "Applies to each call of the batch (a call's own keys win).",
            },
            "writeKey": {"type": "string"},
        },
    }


def _route(kind: str) -> None:
    async def endpoint(request: Request, _: Credentials) -> Response:
        return await _collect(request, kind)

    endpoint.__name__ = f"collect_{kind}"
    endpoint.__doc__ = (
        f"Segment-compatible `{kind}`: stored once per messageId, answered when durable.\n\n"
        "Authenticated by a write key sent in one of three forms: the body's `writeKey`, HTTP "
        "Basic with the key as user name, or a Bearer token. Segment's OAuth form (an access "
        "token as Bearer, the write key in the body) is accepted: custos does not verify the "
        "token, and the request has the rights of the body's write key only."
    )
    router.add_api_route(
        f"/{kind}",
        endpoint,
        methods=["POST"],
        name=f"collect_{kind}",
        responses=answers(Collected, 400, 401, 403),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _body_schema(kind)}},
            },
            # the third form: the key in the body's writeKey (no header)
            "security": [{}],
        },
    )


for _kind in KINDS:
    _route(_kind)
