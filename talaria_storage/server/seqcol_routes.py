"""The sequence-collections v1.0.0 routes: ``/service-info``, ``/collection``, ``/comparison``, ``/list``, ``/attribute``.

Each served database version is a collection (:mod:`talaria_storage.sequences.seqcol`).
``/collection/{digest}?level=1|2`` (default 2; level 2 leaves out the
transient ``sorted_name_length_pairs``), ``/comparison/{a}/{b}`` (the
spec's comparison of the two level 2 collections), ``/list/collection``
(paged from page 0, ``page_size`` at most ``MAX_PAGE_SIZE``, filtered by any
``attribute=<level 1 digest>``, all of them ANDed), ``/attribute/collection/{name}/{digest}``
(a non-transient attribute's value by its level 1 digest). A digest URL's
answer never changes, so it carries ``Cache-Control: immutable``; a
collection of more than ``max_collection_sequences`` sequences is 413 at
level 2, naming the limit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from talaria_storage.sequences.seqcol import ARRAYS, ATTRIBUTES, SCHEMA, TRANSIENT, compare
from talaria_storage.server.catalog import ServedVersion
from talaria_storage.server.media import negotiate
from talaria_storage.server.ranges import RequestError
from talaria_storage.server.responses import IMMUTABLE, ServerState, json_response, query_values, single, state_of

router = APIRouter()

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_DIGEST_LENGTH = 32


@router.api_route("/service-info", methods=["GET", "HEAD"])
def service_info(request: Request) -> Response:
    """GA4GH service-info for the seqcol service, with the schema it serves."""
    negotiate(request.headers.get("accept"), "json")
    state = state_of(request)
    info = {
        "id": "org.talaria-storage.seqcol",
        "name": "talaria-storage sequence collections server",
        "type": {"group": "org.ga4gh", "artifact": "refget-seqcol", "version": "1.0.0"},
        "description": "Each version of each served talaria-storage database as a sequence collection.",
        "organization": {"name": "talaria-storage", "url": str(request.base_url)},
        "version": state.version,
        "seqcol": {"schema": SCHEMA, "sorted_name_length_pairs": True},
        "refget": {"circular_supported": True, "subsequence_limit": state.settings.max_bases or None},
    }
    return json_response(info, request)


@router.api_route("/collection/{digest}", methods=["GET", "HEAD"])
def collection(digest: str, request: Request) -> Response:
    """A collection at level 1 (attribute digests) or level 2 (the arrays, the default)."""
    negotiate(request.headers.get("accept"), "json")
    state = state_of(request)
    level = single(query_values(request), "level") or "2"
    if level not in ("1", "2"):
        raise RequestError(400, f"level={level[:20]!r} is not a level this endpoint serves: use level=1 or level=2")
    version = _collection(state, digest)
    if level == "1":
        return json_response(version.collection.level1, request, cache=IMMUTABLE, etag=f'"{digest}:1"')
    _check_size(state, version)
    return json_response(state.served.level2(version).level2(), request, cache=IMMUTABLE, etag=f'"{digest}:2"')


@router.api_route("/comparison/{digest_a}/{digest_b}", methods=["GET", "HEAD"])
def comparison(digest_a: str, digest_b: str, request: Request) -> Response:
    """The seqcol comparison of two served collections."""
    negotiate(request.headers.get("accept"), "json")
    state = state_of(request)
    a, b = _collection(state, digest_a), _collection(state, digest_b)
    _check_size(state, a)
    _check_size(state, b)
    result = {"digests": {"a": digest_a, "b": digest_b},
              **compare(state.served.level2(a).level2(), state.served.level2(b).level2())}
    return json_response(result, request, cache=IMMUTABLE, etag=f'"{digest_a}:{digest_b}"')


@router.api_route("/list/{object_type}", methods=["GET", "HEAD"])
def list_objects(object_type: str, request: Request) -> Response:
    """Collection digests, paged, optionally filtered by level 1 attribute digests."""
    negotiate(request.headers.get("accept"), "json")
    if object_type != "collection":
        raise RequestError(404, f"no list of '{object_type[:40]}': the only object type is 'collection'")
    state = state_of(request)
    values = query_values(request)
    page = _count(single(values, "page"), "page", 0)
    page_size = _count(single(values, "page_size"), "page_size", DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise RequestError(400, f"page_size={page_size}: use 1 to {MAX_PAGE_SIZE}")
    filters: dict[str, str] = {}
    for name in values:
        if name in ("page", "page_size"):
            continue
        if name not in ATTRIBUTES:
            raise RequestError(
                400, f"'{name[:40]}' is not an attribute of this server's schema: filter by one of {', '.join(ATTRIBUTES)}"
            )
        filters[name] = single(values, name) or ""
    digests = [
        v.collection.digest
        for v in state.served.collections()
        if all(v.collection.level1.get(k) == d for k, d in filters.items())
    ]
    body: dict[str, Any] = {
        "results": digests[page * page_size : (page + 1) * page_size],
        "pagination": {"page": page, "page_size": page_size, "total": len(digests)},
    }
    return json_response(body, request)


@router.api_route("/attribute/{object_type}/{attribute}/{digest}", methods=["GET", "HEAD"])
def attribute(object_type: str, attribute: str, digest: str, request: Request) -> Response:
    """One attribute's level 2 value, by its level 1 digest."""
    negotiate(request.headers.get("accept"), "json")
    if object_type != "collection":
        raise RequestError(404, f"no attributes of '{object_type[:40]}': the only object type is 'collection'")
    if attribute in TRANSIENT:
        raise RequestError(404, f"'{attribute}' is transient: it has a level 1 digest and no value to retrieve")
    if attribute not in ARRAYS:
        raise RequestError(404, f"'{attribute[:40]}' is not an attribute of this server's schema ({', '.join(ARRAYS)})")
    state = state_of(request)
    for version in state.served.collections():
        if version.collection.level1.get(attribute) == digest:
            _check_size(state, version)
            value = state.served.level2(version).level2()[attribute]
            return json_response(value, request, cache=IMMUTABLE, etag=f'"{attribute}:{digest}"')
    raise RequestError(404, f"no served collection has {attribute} with level 1 digest '{digest[:40]}'")


def _collection(state: ServerState, digest: str) -> ServedVersion:
    found = state.served.find_collection(digest) if len(digest) == _DIGEST_LENGTH else None
    if found is None:
        shown = digest[:40].encode("unicode_escape").decode("ascii")
        raise RequestError(404, f"no served collection has the digest '{shown}' (see /list/collection)")
    return found


def _check_size(state: ServerState, version: ServedVersion) -> None:
    limit = state.settings.max_collection_sequences
    if limit and version.collection.count > limit:
        raise RequestError(
            413, f"{version.database}@{version.version} has {version.collection.count} sequences, over this "
            f"server's limit of {limit} per collection response: ask for level=1",
        )


def _count(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise RequestError(400, f"{name}={text[:20]!r} is not a non-negative integer")
    return int(text)
