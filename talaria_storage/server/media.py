"""Content negotiation: which refget media type (v1 or v2, plain or JSON) a request's ``Accept`` allows.

Refget v2.0.0, "Internet Media Types Handling": a response uses the fully
specified type of its endpoint, and a request's type may degrade --
``text/vnd.ga4gh.refget.v2.0.0+plain`` to ``text/plain``,
``application/vnd.ga4gh.refget.v2.0.0+json`` to ``application/json``. The v1
types (``...v1.0.0+plain``, ``...v1.0.0+json``) are served too, because v1
clients (and the v1-era compliance suite) send them; their answer is labelled
v1. Wildcards (``*/*``, ``text/*``) and q-values follow RFC 9110: ``q=0``
refuses a type. An ``Accept`` that allows none of the endpoint's types is
406; a missing or empty one is the v2 default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from talaria_storage.server.ranges import RequestError

Kind = Literal["plain", "json"]

V2 = "2.0.0"
V1 = "1.0.0"


@dataclass(frozen=True, slots=True)
class MediaType:
    """The type a response is sent as."""

    kind: Kind
    version: str  # "2.0.0" or "1.0.0"

    @property
    def content_type(self) -> str:
        top = "text" if self.kind == "plain" else "application"
        return f"{top}/vnd.ga4gh.refget.v{self.version}+{self.kind}; charset=us-ascii"

    @property
    def is_v1(self) -> bool:
        return self.version == V1


def negotiate(accept: str | None, kind: Kind) -> MediaType:
    """The refget type of ``kind`` to answer with, given the request's ``Accept`` header; 406 if none fits."""
    if accept is None or not accept.strip():
        return MediaType(kind, V2)
    top = "text" if kind == "plain" else "application"
    generic = f"{top}/plain" if kind == "plain" else f"{top}/json"
    best: tuple[float, int, str] | None = None  # (q, specificity, version)
    for item in accept.split(",")[:64]:  # a header of thousands of types is no reason to work harder
        name, *params = (part.strip() for part in item.split(";"))
        name = name.lower()
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        candidates: list[tuple[int, str]] = []
        if name == f"{top}/vnd.ga4gh.refget.v{V2}+{kind}":
            candidates.append((3, V2))
        elif name == f"{top}/vnd.ga4gh.refget.v{V1}+{kind}":
            candidates.append((3, V1))
        elif name == generic:
            candidates.append((2, V2))
        elif name in (f"{top}/*", "*/*"):
            candidates.append((1, V2))
        for specificity, version in candidates:
            if q > 0 and (best is None or (q, specificity) > best[:2]):
                best = (q, specificity, version)
    if best is None:
        wanted = f"{top}/vnd.ga4gh.refget.v{V2}+{kind}, its v{V1} twin or {generic}"
        raise RequestError(406, f"Accept '{accept[:100]}' allows none of the types this endpoint sends ({wanted})")
    return MediaType(kind, best[2])
