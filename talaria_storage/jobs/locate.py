"""Line numbers of the tables and keys of a TOML document, which :mod:`tomllib` does not report.

A job file's errors name the line of the key at fault (``job.toml:14: ...``),
so the schema needs to know where each key was written. ``tomllib`` parses
values only, and the well-kept alternatives (tomlkit) keep positions
privately, so this module scans the text once itself. It does not parse
values: it only follows what decides where a key starts -- table headers
(``[store]``, ``[[step]]``), ``key =`` at the start of a logical line, and
the strings, arrays and inline tables that may span lines (so a ``x = 1``
inside a multi-line string or array is not taken for a key). The document
has already been parsed by ``tomllib`` when this runs, so it is valid TOML.

A location is a *path*: ``()`` for the top level, ``("store",)`` for a
table, ``("step", 2)`` for the third ``[[step]]`` table; :meth:`KeyLines.line`
gives the line of a key in it, or of the table's header when ``key`` is None.
"""

from __future__ import annotations

from collections.abc import Iterator

Path = tuple[str | int, ...]

__all__ = ["KeyLines", "Path"]


def _unquote(part: str) -> str:
    part = part.strip()
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
        return part[1:-1]
    return part


def _dotted(name: str) -> list[str]:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]`` (quoted parts may hold dots)."""
    parts: list[str] = []
    current = ""
    quote = ""
    for ch in name:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch == ".":
            parts.append(_unquote(current))
            current = ""
        else:
            current += ch
    parts.append(_unquote(current))
    return parts


class KeyLines:
    """Where each table header and key of a TOML text is (1-based line numbers)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[Path, str | None], int] = {}
        self._scan(text)

    def line(self, path: Path, key: str | None = None) -> int | None:
        """The line of ``key`` in the table at ``path`` (its header when ``key`` is None), if written."""
        found = self._lines.get((path, key))
        if found is None and key is not None:
            return self._lines.get((path, None))  # fall back to the table's header
        return found

    # -- the scanner --------------------------------------------------------------------------

    def _record(self, path: Path, key: str | None, line: int) -> None:
        self._lines.setdefault((path, key), line)

    def _scan(self, text: str) -> None:
        arrays: dict[tuple[str, ...], int] = {}  # array-of-tables name -> index of its last table
        current: Path = ()
        depth = 0  # open [ and { of a value that continues on the next lines
        in_string = ""  # the delimiter of a multi-line string that continues
        for number, raw in enumerate(text.splitlines(), start=1):
            if not in_string and depth == 0:
                stripped = raw.strip()
                if stripped.startswith("[["):
                    names = tuple(_dotted(stripped[2 : stripped.index("]]")]))
                    arrays[names] = arrays.get(names, -1) + 1
                    current = (*self._resolve(names[:-1], arrays), names[-1], arrays[names])
                    self._record(current, None, number)
                    self._record(current[:-2], names[-1], number)
                    continue
                if stripped.startswith("["):
                    names = tuple(_dotted(stripped[1 : stripped.index("]")]))
                    current = (*self._resolve(names, arrays),)
                    self._record(current, None, number)
                    self._record(current[:-1], str(names[-1]), number)
                    continue
                key = self._key(stripped)
                if key is not None:
                    self._record(current, key, number)
            depth, in_string = self._follow(raw, depth, in_string)

    @staticmethod
    def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Iterator[str | int]:
        """A table name as a path: a prefix naming an array of tables points at its last table."""
        for i, name in enumerate(names):
            yield name
            index = arrays.get(names[: i + 1])
            if index is not None and i < len(names) - 1:
                yield index

    @staticmethod
    def _key(stripped: str) -> str | None:
        """The first part of the key a line starts with (``a.b = 1`` -> ``a``), or None."""
        if not stripped or stripped.startswith("#"):
            return None
        quote = ""
        for i, ch in enumerate(stripped):
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "=":
                return _dotted(stripped[:i].strip())[0]
        return None

    @staticmethod
    def _follow(line: str, depth: int, in_string: str) -> tuple[int, str]:
        """The bracket depth and open multi-line string after ``line`` (comments and strings skipped)."""
        i = 0
        n = len(line)
        seen_equals = depth > 0  # brackets count only in values: not in a [table] header
        while i < n:
            if in_string:
                if line.startswith(in_string, i):
                    i += 3
                    in_string = ""
                    continue
                if line[i] == "\\" and in_string == '"""':
                    i += 2
                    continue
                i += 1
                continue
            ch = line[i]
            if ch == "#":
                break
            if line.startswith('"""', i) or line.startswith("'''", i):
                in_string = line[i : i + 3]
                i += 3
                continue
            if ch in "\"'":
                end = i + 1
                while end < n and line[end] != ch:
                    end += 2 if (ch == '"' and line[end] == "\\") else 1
                i = end + 1
                continue
            if ch == "=":
                seen_equals = True
            elif seen_equals and ch in "[{":
                depth += 1
            elif seen_equals and ch in "]}":
                depth = max(0, depth - 1)
            i += 1
        return depth, in_string
