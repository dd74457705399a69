"""Response helpers shared by the refget and seqcol routes: JSON bodies, errors, validators, the served state.

Every error is JSON ``{"status_code": N, "message": "..."}``, one line that
names the parameter, header or identifier at fault and what would be right.
``ETag`` handling follows RFC 9110: ``If-None-Match`` (a list, ``*`` or
weak tags compared weakly) answers 304 before any residue is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from talaria_storage.core.errors import InvalidSequenceId
from talaria_storage.sequences.canonical import SequenceId, parse_sequence_id
from talaria_storage.server.catalog import ServedStore
from talaria_storage.server.ranges import RequestError
from talaria_storage.server.sequence_reader import SequenceReader, trunc512_to_refget
from talaria_storage.server.settings import ServerSettings

IMMUTABLE = "public, max-age=31536000, immutable"  # a digest URL's answer never changes
REVALIDATE = "no-cache"  # may change (new versions): keep, but ask again with If-None-Match
MAX_ID_LENGTH = 200
_TRUNC512 = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class ServerState:
    """What every request of one server shares (``app.state.talaria``)."""

    served: ServedStore
    reader: SequenceReader
    settings: ServerSettings
    version: str  # of talaria-storage, for service-info


def state_of(request: Request) -> ServerState:
    found: ServerState = request.app.state.talaria
    return found


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps({"status_code": status, "message": message}).encode()
    return Response(body, status, headers=dict(headers or {}), media_type="application/json")


def json_response(
    value: Any, request: Request, *, content_type: str = "application/json", cache: str = REVALIDATE,
    etag: str | None = None, status: int = 200,
) -> Response:
    """``value`` as JSON with an ``ETag`` (given, or of the body) and 304 on a matching ``If-None-Match``."""
    body = json.dumps(value, separators=(",", ":")).encode()
    tag = etag or '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": cache, "Vary": "Accept"}
    if not_modified(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, status, headers=headers, media_type=content_type)


def not_modified(request: Request, etag: str) -> bool:
    """True when the request's ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    given = request.headers.get("if-none-match")
    if given is None:
        return False
    if given.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in given.split(",")[:64])


def query_values(request: Request) -> dict[str, list[str]]:
    """The query string as name -> every value given (``?&end=5`` has just ``end``)."""
    found: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        found.setdefault(name, []).append(value)
    return found


def single(values: Mapping[str, Sequence[str]], name: str) -> str | None:
    """A query parameter given at most once; 400 when repeated."""
    given = values.get(name, ())
    if len(given) > 1:
        raise RequestError(400, f"query parameter '{name}' is given {len(given)} times: give it once")
    return given[0] if given else None


def parse_served_id(text: str) -> SequenceId:
    """A sequence id of the refget routes: ``SQ.``/``ga4gh:SQ.``, MD5 (bare or ``md5:``), the store's
    SHA-256 (bare or ``sha256:``) or v1's TRUNC512 (48 hex, bare or ``trunc512:``); 404 otherwise
    (refget: an identifier the server does not know is 404, and an unparsable one is not known)."""
    if len(text) > MAX_ID_LENGTH:
        raise RequestError(404, f"sequence id of {len(text)} characters is not a digest this server knows")
    item = text.strip()
    scheme, colon, rest = item.partition(":")
    if colon and scheme.lower() == "trunc512":
        item = rest
    elif colon and scheme.lower() == "sha256":
        item = rest
    if len(item) == 48 and set(item) <= _TRUNC512:
        item = trunc512_to_refget(item)
    try:
        return parse_sequence_id(item)
    except InvalidSequenceId:
        shown = text[:80].encode("unicode_escape").decode("ascii")
        raise RequestError(
            404,
            f"'{shown}' is not a sequence digest this server knows: use SQ.<32 base64url> or ga4gh:SQ.<...>, "
            "an MD5 (32 hex, optionally md5:), a TRUNC512 (48 hex) or the store's SHA-256 (64 hex)",
        ) from None
