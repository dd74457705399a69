"""The refget sequences v2.0.0 routes: ``/sequence/{id}``, ``/sequence/{id}/metadata``, ``/sequence/service-info``.

What each answers, and the spec clause behind each status, is in
:mod:`talaria_storage.server.ranges` (sub-sequences) and
:mod:`talaria_storage.server.media` (``Accept``). The rest:

* ``id`` is any digest :func:`~talaria_storage.server.responses.parse_served_id`
  takes; a sequence is found in the served versions, HEADs first.
* A sequence response streams from the store (see
  :mod:`talaria_storage.server.sequence_reader`) with ``Content-Length``,
  ``ETag`` = the id as asked (with ``:start-end`` for a sub-sequence),
  ``Cache-Control: immutable`` and ``Vary: Accept``; ``If-None-Match``
  answers 304 before anything is read, and ``If-Range`` that does not match
  turns a ``Range`` request into a whole one (RFC 9110 13.1.5).
* Over the ``max_bases`` limit: a sub-sequence is 416, a whole sequence 413,
  each naming the limit.
* The request body is never read.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from talaria_storage.server.media import negotiate
from talaria_storage.server.ranges import (
    RequestError,
    Selection,
    parse_query_bounds,
    parse_range_header,
    select_from_query,
    select_from_range,
)
from talaria_storage.server.responses import (
    IMMUTABLE,
    json_response,
    not_modified,
    parse_served_id,
    query_values,
    state_of,
)

router = APIRouter()

ALGORITHMS = ["md5", "ga4gh", "trunc512", "sha256"]  # sha256: the store's own, a non-standard extension


@router.api_route("/sequence/service-info", methods=["GET", "HEAD"])
def sequence_service_info(request: Request) -> Response:
    """The refget service-info: GA4GH service-info plus ``refget`` (v2) and ``service`` (v1) objects."""
    media = negotiate(request.headers.get("accept"), "json")
    state = state_of(request)
    limit = state.settings.max_bases or None
    base = str(request.base_url)
    info = {
        "id": "org.talaria-storage.refget",
        "name": "talaria-storage refget server",
        "type": {"group": "org.ga4gh", "artifact": "refget", "version": "2.0.0"},
        "description": "Reference sequences by digest from a talaria-storage store (read-only).",
        "organization": {"name": "talaria-storage", "url": base},
        "version": state.version,
        "refget": {
            "circular_supported": True,
            "subsequence_limit": limit,
            "algorithms": ALGORITHMS,
            "identifier_types": [],
        },
        # refget v1.0.0's service-info, for v1 clients (and the v1-era compliance suite).
        "service": {
            "circular_supported": True,
            "algorithms": ["md5", "trunc512", "ga4gh"],
            "subsequence_limit": limit,
            "supported_api_versions": ["1.0.0", "2.0.0"],
        },
    }
    return json_response(info, request, content_type=media.content_type)


@router.api_route("/sequence/{sequence_id}/metadata", methods=["GET", "HEAD"])
def sequence_metadata(sequence_id: str, request: Request) -> Response:
    """md5, ga4gh (v2) or trunc512 (v1), length and aliases of a sequence."""
    media = negotiate(request.headers.get("accept"), "json")
    state = state_of(request)
    sid = parse_served_id(sequence_id)
    hit = state.served.find_sequence(sid)
    if hit is None:
        raise RequestError(404, f"sequence '{sid.value}' is in no served database")
    found = state.reader.digests(hit)
    metadata: dict[str, object] = {"md5": found.md5}
    if media.is_v1:
        metadata["trunc512"] = found.trunc512
    else:
        metadata["ga4gh"] = found.ga4gh
    metadata["length"] = found.length
    metadata["aliases"] = state.reader.aliases(hit)
    return json_response({"metadata": metadata}, request, content_type=media.content_type)


@router.api_route("/sequence/{sequence_id}", methods=["GET", "HEAD"])
def sequence(sequence_id: str, request: Request) -> Response:
    """A sequence or sub-sequence, as plain upper-case residues with no line breaks."""
    media = negotiate(request.headers.get("accept"), "plain")
    state = state_of(request)
    sid = parse_served_id(sequence_id)
    values = query_values(request)
    bounds = parse_query_bounds(values)
    ranges = request.headers.getlist("range")
    if len(ranges) > 1:
        raise RequestError(400, f"{len(ranges)} Range headers: give one")
    byte_range = parse_range_header(ranges[0]) if ranges else None
    queried = bounds.start is not None or bounds.end is not None
    if byte_range is not None and queried:
        raise RequestError(400, "both a Range header and start/end query parameters: use one of them")

    hit = state.served.find_sequence(sid)
    if hit is None:
        raise RequestError(404, f"sequence '{sid.value}' is in no served database")
    etag = f'"{sid.value}"'
    if_range = request.headers.get("if-range")
    if byte_range is not None and if_range is not None and if_range.strip().removeprefix("W/") != etag:
        byte_range = None  # the client's copy is another representation: send the whole sequence
    length = state.reader.length(hit)

    if queried:
        circular = (
            bounds.start is not None and bounds.end is not None and bounds.start > bounds.end
            and state.reader.is_circular(hit)
        )
        selection = select_from_query(bounds, length, circular=circular)
        etag = f'"{sid.value}:{selection.start}-{selection.end}"'
    elif byte_range is not None:
        selection = select_from_range(byte_range, length)
    else:
        selection = Selection(0, length)
    size = selection.size(length)
    _check_limit(state.settings.max_bases, size, whole=not queried and byte_range is None, length=length)

    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "Vary": "Accept",
        "Accept-Ranges": "none" if queried else "bytes",
    }
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(size)
    status = 200
    if selection.partial:
        status = 206
        headers["Content-Range"] = f"bytes {selection.start}-{selection.end - 1}/{length}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media.content_type)
    pieces = state.reader.pieces(hit, selection.pieces(length))
    return StreamingResponse(pieces, status, headers=headers, media_type=media.content_type)


def _check_limit(limit: int, size: int, *, whole: bool, length: int) -> None:
    if not limit or size <= limit:
        return
    if whole:
        raise RequestError(
            413, f"the sequence is {length} residues, over this server's limit of {limit} per response: "
            "ask for a part of it with start/end or a Range header",
        )
    raise RequestError(416, f"{size} residues asked for, over this server's subsequence limit of {limit}")
