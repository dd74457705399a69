"""The job file: what ``talaria-storage run job.toml`` reads, validated key by key.

A job file (docs/jobs.md is the user's guide)::

    description = "nightly UniProt refresh"      # optional, shown in reports
    config = "storage.toml"                      # a storage.toml, and/or:
    state_dir = ".talaria-jobs/nightly"          # optional: lock, log, digest cache

    [store]
    location = "./store"                         # path or URL; compression,
                                                 # compression_level, threads too
    [vars]
    release = "2024_01"                          # ${release} anywhere below;
                                                 # --set release=2024_02 wins
    [[step]]
    name = "import"                              # unique
    kind = "import"                              # import taxonomy reduce optimize
    database = "uniprot"                         # verify gc sync export
    version = "${release}"
    files = ["uniprot_${release}.fasta.gz"]

    [[step]]
    name = "check"
    kind = "verify"
    after = ["import"]                           # dependencies (names)

A step's arguments are its CLI command's long options, ``-`` written ``_``
(``--file-index`` is ``file_index``), and its positional arguments by name
(``files`` of ``import``, ``dir`` of ``taxonomy import``); :data:`STEP_ARGS`
lists them per kind. Validation follows :mod:`talaria_storage.config.settings`:
one table maps every key to its kind (the same :class:`Int`, :class:`Float`,
:class:`Choice`... value kinds, so a value is judged as ``storage.toml``
judges it), every value goes through it, and anything wrong is one line,
``job.toml:14: [[step]] 'import' unknown key 'fils': did you mean "files"? ...``,
naming the file, the line (:mod:`.locate`) and the key. Nothing runs until
the whole file is valid, including:

* ``${name}`` substitution: from ``[vars]`` (whose values may use other vars)
  overridden by ``--set name=value``; ``$${`` writes a literal ``${``; an
  undefined name is an error. A string that is exactly one ``${name}`` takes
  the var's value with its type (``taxon = "${taxon}"`` is an integer when
  the var is); text from ``--set`` is parsed as the key's kind parses
  environment text (``--set taxon=9606``).
* relative paths are relative to the job file's folder, as ``storage.toml``'s
  are to its own, so a job runs the same from any directory;
* every input file or folder must exist, unless an earlier step writes it;
* ``after`` names other steps, and has no cycle; steps run in file order,
  except that a step always runs after the steps it names.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from talaria_storage.config.settings import (
    SCHEMA as CONFIG_SCHEMA,
)
from talaria_storage.config.settings import (
    Bool,
    Choice,
    Float,
    Int,
    Kind,
    StoreLocation,
    Str,
    _Invalid,
)
from talaria_storage.core.errors import ConfigError, InvalidKey
from talaria_storage.core.keys import validate_name
from talaria_storage.jobs.locate import KeyLines
from talaria_storage.jobs.locate import Path as TomlPath
from talaria_storage.optimization.strategies import OptimizationStrategy
from talaria_storage.reduction.building import RANKS
from talaria_storage.sequences.versions import parse_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "KINDS",
    "STEP_ARGS",
    "Arg",
    "Job",
    "JobFileError",
    "Role",
    "StepSpec",
    "StoreSpec",
    "load_job",
    "parse_assignments",
]

#: The job file format; part of every step's fingerprint.
JOB_FORMAT_VERSION = 1

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_VAR = re.compile(r"\$(\$?)\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class JobFileError(ConfigError):
    """A job file (or a ``--set``) is wrong: one line naming the file, the line and the key."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, key: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key = key


# -- value kinds the config schema has no use for --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    """A name that becomes part of a store key (database, version, profile): :func:`validate_name`."""

    what: str

    @property
    def allowed(self) -> str:
        return f"expected a {self.what}: letters, digits and . _ @ = + - (not starting with '.')"

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"is not a string: {self.allowed}")
        try:
            return validate_name(value, self.what)
        except InvalidKey:
            raise _Invalid(f"is not allowed: {self.allowed}") from None

    def parse(self, text: str) -> str:
        return self.check(text)


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    """``NAME`` or ``NAME@VERSION``, as the CLI's ``--database`` takes it."""

    @property
    def allowed(self) -> str:
        return "expected NAME or NAME@VERSION (letters, digits and . _ = + -)"

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"is not a string: {self.allowed}")
        try:
            parse_spec(value)
        except InvalidKey:
            raise _Invalid(f"is not allowed: {self.allowed}") from None
        return value

    def parse(self, text: str) -> str:
        return self.check(text)


@dataclass(frozen=True, slots=True)
class Fraction:
    """A number in (0, 1], as reduction identities and coverages are."""

    @property
    def allowed(self) -> str:
        return "expected a number above 0 and at most 1"

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"is not a number: {self.allowed}")
        if not 0 < value <= 1:
            raise _Invalid(f"is out of range: {self.allowed}")
        return float(value)

    def parse(self, text: str) -> float:
        try:
            return self.check(float(text.strip()))
        except ValueError:
            raise _Invalid(f"is not a number: {self.allowed}") from None


@dataclass(frozen=True, slots=True)
class Percent:
    """A percentage in (0, 100], as ``verify --subset`` takes it."""

    @property
    def allowed(self) -> str:
        return "expected a percentage above 0 and at most 100"

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"is not a number: {self.allowed}")
        if not 0 < value <= 100:
            raise _Invalid(f"is out of range: {self.allowed}")
        return float(value)

    def parse(self, text: str) -> float:
        try:
            return self.check(float(text.strip()))
        except ValueError:
            raise _Invalid(f"is not a number: {self.allowed}") from None


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list of values of one kind; one bare value counts as a list of one (a repeated CLI option)."""

    item: Kind
    non_empty: bool = True

    @property
    def allowed(self) -> str:
        return f"expected a list, each item {self.item.allowed.removeprefix('expected ')}"

    def check(self, value: Any) -> tuple[Any, ...]:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if self.non_empty and not items:
            raise _Invalid(f"is empty: {self.allowed}")
        return tuple(self.item.check(v) for v in items)

    def parse(self, text: str) -> tuple[Any, ...]:
        return (self.item.parse(text),)


# -- the step schema ---------------------------------------------------------------------------

class Role:
    """What a key's value is to the runner, beyond a value: a file it reads, a file it writes."""

    VALUE = "value"
    INPUT = "input"  # a path (or list of paths) that must exist; its content is in the fingerprint
    INPUT_DIR = "input-dir"  # a folder that must exist
    TAXON_SOURCE = "taxon-source"  # "header", "none", or an input path (import --taxonomy)
    OUTPUT = "output"  # a path the step writes; later steps may read it


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a step kind: its value kind, default, whether required, and its role."""

    kind: Kind
    doc: str
    default: Any = None
    required: bool = False
    role: str = Role.VALUE
    why_required: str = ""


_PATH = Str()

#: The optimizer's strategies, by the names ``talaria-storage optimize --strategy`` takes.
OPTIMIZE_STRATEGIES = tuple(strategy.value for strategy in OptimizationStrategy)

#: Step kind -> argument name -> :class:`Arg`. The CLI command each kind mirrors is in its docs.
STEP_ARGS: dict[str, dict[str, Arg]] = {
    "import": {  # talaria-storage import FILE... --database D --version V [--taxonomy ...] [--taxon ID] [--id-regex R]
        "files": Arg(ListOf(_PATH), "FASTA/FASTQ/GenBank/EMBL files (plain, .gz or .zst)", required=True,
                     role=Role.INPUT),
        "database": Arg(Name("database name"), "database to import into", required=True),
        "version": Arg(Name("version"), "version name", required=True,
                       why_required="a job's import needs a fixed version name, so that a re-run resumes "
                       'the same import and finds its output: write version = "${release}" or a name'),
        "taxonomy": Arg(Str(), "where taxa come from: header (OX=), none, or an accession->taxid file",
                        default="header", role=Role.TAXON_SOURCE),
        "taxon": Arg(Int(0), "taxon id for records that carry none"),
        "id_regex": Arg(Str(), "each match in a header (its first group) is a look-up key too (import --id-regex)"),
    },
    "taxonomy": {  # talaria-storage taxonomy import DIR [--version V]
        "dir": Arg(_PATH, "taxdump folder (nodes.dmp, names.dmp, merged.dmp, delnodes.dmp)", required=True,
                   role=Role.INPUT_DIR),
        "version": Arg(Name("taxonomy version"), "taxonomy version name (default: a timestamp)"),
    },
    "reduce": {  # talaria-storage reduce --database D[@V] --profile P (--identity F | --ratio F) ...
        "database": Arg(DatabaseSpec(), "database (and version) to reduce", required=True),
        "profile": Arg(Name("profile name"), "reduction profile name", required=True),
        "identity": Arg(Fraction(), "identity over the shorter sequence (default 0.9)"),
        "ratio": Arg(Fraction(), "aim for this fraction of sequences kept (instead of identity)"),
        "coverage": Arg(Fraction(), "coverage threshold (default 0.8)"),
        "taxonomy_aware": Arg(Bool(), "a member joins only a reference of its taxon", default=False),
        "rank": Arg(Choice(RANKS), "with taxonomy_aware: compare taxa at this rank of the store's taxdump"),
        "update": Arg(Bool(), "keep existing references, assign only new sequences", default=False),
    },
    "optimize": {  # talaria-storage optimize [--dry-run] [--strategy S...]
        "strategy": Arg(ListOf(Choice(OPTIMIZE_STRATEGIES)), "strategies to run (default: the default set)"),
        "dry_run": Arg(Bool(), "report what would change, change nothing", default=False),
        "grace": Arg(Int(0), "gc spares objects younger than this many seconds", default=3600),
    },
    "verify": {  # talaria-storage verify [--subset PERCENT] [--seed N]
        "subset": Arg(Percent(), "re-hash only this percentage of the objects"),
        "seed": Arg(Int(0), "seed for subset"),
    },
    "gc": {  # talaria-storage gc [--grace SECONDS] [--dry-run]
        "grace": Arg(Float(0.0), "spare objects younger than this many seconds", default=3600.0),
        "dry_run": Arg(Bool(), "report what would be removed, remove nothing", default=False),
    },
    "sync": {  # talaria-storage sync push|pull REMOTE [--database D[@V]]... [--force]
        "direction": Arg(Choice(("push", "pull")), "push to the remote, or pull from it", required=True),
        "remote": Arg(Str(), "a store location or a [remote.NAME] of the config", required=True),
        "database": Arg(ListOf(DatabaseSpec()), "databases (NAME or NAME@VERSION; default: every one)"),
        "force": Arg(Bool(), "overwrite refs where the histories diverged", default=False),
    },
    "export": {  # talaria-storage export --database D[@V] --output FILE [...]
        "database": Arg(DatabaseSpec(), "database (and version) to export", required=True),
        "output": Arg(_PATH, "file to write (atomically)", required=True, role=Role.OUTPUT,
                      why_required="a job's export writes a file: give output = \"path\""),
        "normalized": Arg(Bool(), "upper-case residues, \\n line ends, width columns", default=False),
        "width": Arg(Int(0), "line width of normalized (0: one line)", default=60),
        "file_index": Arg(Int(0), "only the I-th imported file (from 0)"),
        "taxon": Arg(Int(0), "only the records of this taxon"),
        "descendants": Arg(Bool(), "with taxon: its whole subtree", default=False),
        "format": Arg(Choice(("fasta", "genbank", "embl")), "fasta, genbank or embl (default: byte-exact)"),
    },
}
KINDS = tuple(STEP_ARGS)
_STEP_KEYS = ("name", "kind", "after")
_TOP_KEYS = ("description", "config", "state_dir", "store", "vars", "step")
_STORE_KEYS: dict[str, Kind] = {
    "location": StoreLocation(),
    **{k: CONFIG_SCHEMA["storage"][k].kind for k in ("compression", "compression_level", "threads")},
}


# -- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Which store a job works on: a location, a storage.toml, or both (the location wins)."""

    location: str | None = None
    config: str | None = None  # absolute path
    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One validated ``[[step]]``: arguments with defaults filled in and paths made absolute."""

    name: str
    kind: str
    args: Mapping[str, Any]
    after: tuple[str, ...]
    line: int | None  # of its [[step]] header
    position: int  # index in the file

    def paths(self, role: str) -> list[str]:
        """The absolute paths of this step's arguments with ``role``."""
        found: list[str] = []
        for name, arg in STEP_ARGS[self.kind].items():
            value = self.args.get(name)
            if value is None or arg.role != role:
                continue
            found.extend(value if isinstance(value, tuple) else [value])
        return found

    def input_files(self) -> list[str]:
        """Files the step reads (their content goes into its fingerprint)."""
        files = self.paths(Role.INPUT)
        taxonomy = self.args.get("taxonomy")
        if self.kind == "import" and isinstance(taxonomy, str) and taxonomy not in ("header", "none"):
            files.append(taxonomy)
        return files


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job: its store, vars, and steps in the order they run."""

    path: Path  # absolute
    where: str  # the file as named, for messages
    description: str
    store: StoreSpec
    vars: Mapping[str, Any]
    steps: tuple[StepSpec, ...]  # execution order (file order, dependencies first)
    state_dir: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def step(self, name: str) -> StepSpec:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def dependents(self, name: str) -> set[str]:
        """The steps that depend on ``name``, directly or through others."""
        found: set[str] = set()
        for step in self.steps:  # execution order: a dependent comes after what it needs
            if name in step.after or found.intersection(step.after):
                found.add(step.name)
        return found


# -- loading ------------------------------------------------------------------------------------


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` from ``--set`` -> ``{"k": "v"}``; a malformed one is a one-line error."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not _VAR_NAME.fullmatch(name):
            raise JobFileError(
                f"--set {pair!r}: write NAME=VALUE, NAME made of letters, digits, '_', '.' and '-' "
                "(not starting with a digit)",
                key="--set",
            )
        found[name] = value
    return found


def load_job(
    path: str | os.PathLike[str], overrides: Mapping[str, str] | None = None
) -> Job:
    """Read and validate the job file at ``path``, with ``--set`` values ``overrides``.

    Raises :class:`JobFileError` (one line: file, line, key, what to do) for anything wrong.
    """
    where = os.fspath(path)
    file = Path(where).expanduser().absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobFileError(f"job file '{where}' not found", file=where) from None
    except IsADirectoryError:
        raise JobFileError(f"job file '{where}' is a folder, not a file", file=where) from None
    except UnicodeDecodeError as exc:
        raise JobFileError(f"{where}: not UTF-8 text ({exc.reason})", file=where) from None
    except OSError as exc:
        raise JobFileError(f"cannot read job file '{where}': {exc.strerror or exc}", file=where) from None
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(f"{where}: invalid TOML: {exc}", file=where) from None
    return _Loader(where, file, KeyLines(text), overrides or {}).load(tree)


class _Loader:
    """Validates one parsed job file; every error names the line through :class:`KeyLines`."""

    def __init__(self, where: str, file: Path, lines: KeyLines, overrides: Mapping[str, str]) -> None:
        self.where = where
        self.file = file
        self.folder = file.parent
        self.lines = lines
        self.overrides = dict(overrides)
        self.vars: dict[str, Any] = {}
        self.step_names: dict[int, str] = {}  # [[step]] index -> name, for messages

    # -- messages ---------------------------------------------------------------------------------

    def error(self, path: TomlPath, key: str | None, message: str) -> JobFileError:
        line = self.lines.line(path, key)
        at = f"{self.where}:{line}" if line is not None else self.where
        return JobFileError(f"{at}: {message}", file=self.where, line=line, key=key or "")

    @staticmethod
    def suggest(word: str, candidates: Sequence[str]) -> str:
        match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
        return f"did you mean {json.dumps(match[0])}? " if match else ""

    # -- the whole file ---------------------------------------------------------------------------

    def load(self, tree: dict[str, Any]) -> Job:
        for key in tree:
            if key not in _TOP_KEYS:
                raise self.error((), key, f"unknown key '{key}': {self.suggest(key, _TOP_KEYS)}"
                                 f"the top level holds {', '.join(_TOP_KEYS)}")
        self.vars = self.load_vars(tree.get("vars", {}))
        description = self.top_string(tree, "description") or ""
        store = self.load_store(tree)
        state_dir = self.top_string(tree, "state_dir")
        steps = self.load_steps(tree.get("step"))
        return Job(
            path=self.file,
            where=self.where,
            description=description,
            store=store,
            vars=MappingProxyType(dict(self.vars)),
            steps=steps,
            state_dir=Path(self.absolute(state_dir)) if state_dir else self.folder / ".talaria-jobs" / self.file.stem,
        )

    def top_string(self, tree: dict[str, Any], key: str) -> str | None:
        if key not in tree:
            return None
        value = self.value((), key, tree[key], Str())
        return str(value)

    def absolute(self, text: str) -> str:
        found = Path(text).expanduser()
        return os.path.normpath(found if found.is_absolute() else (self.folder / found))

    # -- [vars] and ${...} ------------------------------------------------------------------------

    def load_vars(self, table: Any) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.error((), "vars", "vars must be a table: write [vars] and name = value lines below it")
        raw: dict[str, Any] = {}
        for name, value in table.items():
            if not _VAR_NAME.fullmatch(name):
                raise self.error(("vars",), name, f"[vars] '{name}' is not a var name: use letters, digits, "
                                 "'_', '.' and '-', not starting with a digit")
            if isinstance(value, (dict, list)) or not isinstance(value, (str, int, float, bool)):
                raise self.error(("vars",), name, f"[vars] {name} must be a string, number or boolean")
            raw[name] = value
        raw.update(self.overrides)  # --set wins (text)
        resolved: dict[str, Any] = {}

        def resolve(name: str, chain: tuple[str, ...]) -> Any:
            if name in resolved:
                return resolved[name]
            value = raw[name]
            if isinstance(value, str) and name not in self.overrides:
                if name in chain:
                    cycle = " -> ".join((*chain[chain.index(name):], name))
                    raise self.error(("vars",), name, f"[vars] {name} refers to itself: {cycle}")
                value = self.substitute(("vars",), name, value, lambda n: resolve(n, (*chain, name)), raw)
            resolved[name] = value
            return value

        for name in raw:
            resolve(name, ())
        return resolved

    def substitute(
        self, path: TomlPath, key: str, text: str, lookup: Any = None, known: Mapping[str, Any] | None = None
    ) -> Any:
        """``text`` with every ``${name}`` replaced; exactly one ``${name}`` keeps the var's type."""
        known = self.vars if known is None else known
        get = lookup or (lambda n: self.vars[n])
        whole = _VAR.fullmatch(text)
        if whole and not whole.group(1):
            name = self.var_name(path, key, whole.group(2), known)
            return get(name)
        if "${" in text.replace("$${", "") and not _VAR.search(text):
            raise self.error(path, key, f"{self.label(path, key)}: '${{' without a closing '}}': write ${{name}}, "
                             "or $${ for a literal ${")

        def replace(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"  # $${x} -> ${x}
            value = get(self.var_name(path, key, match.group(2), known))
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return _VAR.sub(replace, text)

    def var_name(self, path: TomlPath, key: str, name: str, known: Mapping[str, Any]) -> str:
        if name not in known:
            hint = self.suggest(name, list(known)).replace('"', "").replace("did you mean ", "did you mean ${")
            hint = hint.replace("? ", "}? ") if hint else ""
            raise self.error(path, key, f"{self.label(path, key)}: ${{{name}}} is not defined: {hint}"
                             f"define it in [vars] or pass --set {name or 'NAME'}=VALUE")
        return name

    def label(self, path: TomlPath, key: str | None) -> str:
        """How a key is named in messages: ``[store] location``, ``[[step]] 'import' files``."""
        if not path:
            return key or ""
        if path[0] == "step":
            name = self.step_names.get(path[1]) if isinstance(path[1], int) else None
            head = f"[[step]] '{name}'" if name else f"[[step]] #{int(path[1]) + 1}"
            return f"{head} {key}" if key else head
        return f"[{'.'.join(str(p) for p in path)}] {key}" if key else f"[{path[0]}]"

    def value(self, path: TomlPath, key: str, raw: Any, kind: Kind) -> Any:
        """``raw`` after substitution, checked by ``kind`` (substituted text is parsed)."""
        try:
            if isinstance(raw, str) and "$" in raw:
                substituted = self.substitute(path, key, raw)
                if isinstance(substituted, str):
                    return kind.parse(substituted)
                return kind.check(substituted)
            if isinstance(raw, list) and isinstance(kind, ListOf):
                return self.list_value(path, key, raw, kind)
            return kind.check(raw)
        except _Invalid as exc:
            shown = raw if not isinstance(raw, str) else json.dumps(raw)
            if isinstance(raw, bool):
                shown = "true" if raw else "false"
            elif isinstance(raw, (list, dict)):
                shown = json.dumps(raw)[:60]
            raise self.error(path, key, f"{self.label(path, key)} = {shown} {exc.reason}") from None

    def list_value(self, path: TomlPath, key: str, raw: list[Any], kind: ListOf) -> tuple[Any, ...]:
        if kind.non_empty and not raw:
            raise _Invalid(f"is empty: {kind.allowed}")
        items: list[Any] = []
        for item in raw:
            items.extend(self.value(path, key, item, ListOf(kind.item, non_empty=False)))
        return tuple(items)

    # -- [store] / config -------------------------------------------------------------------------

    def load_store(self, tree: dict[str, Any]) -> StoreSpec:
        config = self.top_string(tree, "config")
        if config is not None:
            config = self.absolute(config)
            if not Path(config).is_file():
                raise self.error((), "config", f"config = {json.dumps(tree['config'])}: no such file "
                                 f"({config}); give the path of a storage.toml, relative to the job file")
        table = tree.get("store", {})
        if not isinstance(table, dict):
            raise self.error((), "store", "store must be a table: write [store] and location = \"...\" below it")
        location = None
        overrides: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in _STORE_KEYS:
                raise self.error(("store",), key, f"[store] unknown key '{key}': {self.suggest(key, list(_STORE_KEYS))}"
                                 f"known keys: {', '.join(_STORE_KEYS)} (other settings go in a storage.toml "
                                 "named by config = ...)")
            value = self.value(("store",), key, raw, _STORE_KEYS[key])
            if key == "location":
                location = value if "://" in value else self.absolute(value)
            else:
                overrides[key] = value
        if table and location is None and config is None:
            raise self.error(("store",), None, '[store] has no location: add location = "./store" (or a URL), '
                             'or name a storage.toml with config = "storage.toml"')
        return StoreSpec(location=location, config=config, overrides=MappingProxyType(overrides))

    # -- [[step]] ---------------------------------------------------------------------------------

    def load_steps(self, raw: Any) -> tuple[StepSpec, ...]:
        if raw is None:
            raise self.error((), None, "no steps: add [[step]] tables, each with a name and a kind")
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise self.error((), "step", "step must be an array of tables: write each step as a [[step]] table")
        self.step_names = {i: t["name"] for i, t in enumerate(raw) if isinstance(t.get("name"), str)}
        steps: list[StepSpec] = []
        seen: dict[str, int] = {}
        outputs: set[str] = set()
        for index, table in enumerate(raw):
            step = self.load_step(index, table, outputs)
            if step.name in seen:
                first = self.lines.line(("step", seen[step.name]), "name")
                raise self.error(("step", index), "name", f"[[step]] name = \"{step.name}\" is taken by the step "
                                 f"at line {first}: give each step its own name")
            seen[step.name] = index
            outputs.update(step.paths(Role.OUTPUT))
            steps.append(step)
        for step in steps:
            for other in step.after:
                if other not in seen:
                    raise self.error(("step", step.position), "after", f"[[step]] '{step.name}' after: '{other}' "
                                     f"names no step: {self.suggest(other, list(seen))}steps are {', '.join(seen)}")
        return self.order(steps)

    def load_step(self, index: int, table: dict[str, Any], outputs: set[str]) -> StepSpec:
        path: TomlPath = ("step", index)
        for key in ("kind", "name"):
            if key not in table:
                example = {"kind": 'kind = "import"', "name": 'name = "import-release"'}[key]
                raise self.error(path, None, f"{self.label(path, None)} has no {key}: add {example}")
        name = self.value(path, "name", table["name"], Str(pattern=_NAME, pattern_text=(
            "expected a step name: letters, digits, '.', '_' and '-', starting with a letter or digit")))
        self.step_names[index] = name
        kind = self.value(path, "kind", table["kind"], Str())
        if kind not in STEP_ARGS:
            raise self.error(path, "kind", f"[[step]] '{name}' kind = \"{kind}\" is not a step kind: "
                             f"{self.suggest(kind, KINDS)}kinds are {', '.join(KINDS)}")
        schema = STEP_ARGS[kind]
        after: tuple[str, ...] = ()
        if "after" in table:
            after = self.value(path, "after", table["after"], ListOf(Str(), non_empty=False))
            if name in after:
                raise self.error(path, "after", f"[[step]] '{name}' after: a cycle: {name} -> {name}")
        args: dict[str, Any] = {}
        for key, raw in table.items():
            if key in _STEP_KEYS:
                continue
            if key not in schema:
                known = ", ".join(sorted(schema))
                raise self.error(path, key, f"[[step]] '{name}' unknown key '{key}': "
                                 f"{self.suggest(key, [*schema, *_STEP_KEYS])}keys of a {kind} step: "
                                 f"{known} (and name, kind, after)")
            args[key] = self.value(path, key, raw, schema[key].kind)
        for key, arg in schema.items():
            if key not in args:
                if arg.required:
                    why = arg.why_required or f"add {key} = ... ({arg.doc})"
                    raise self.error(path, None, f"[[step]] '{name}' ({kind}) has no {key}: {why}")
                args[key] = arg.default
        self.check_combinations(path, name, kind, args, table)
        self.resolve_paths(path, name, kind, args, outputs)
        return StepSpec(name, kind, MappingProxyType(args), tuple(dict.fromkeys(after)),
                        self.lines.line(path), index)

    def check_combinations(
        self, path: TomlPath, name: str, kind: str, args: dict[str, Any], table: dict[str, Any]
    ) -> None:
        """The CLI's rules for options that exclude or need each other."""
        rules: list[tuple[bool, str, str]] = []
        if kind == "export":
            rules += [
                (args["normalized"] and args["format"] is not None, "format", "choose normalized or format, not both"),
                (args["descendants"] and args["taxon"] is None, "descendants", "descendants needs taxon"),
                (args["taxon"] is not None and args["file_index"] is not None, "file_index",
                 "choose taxon or file_index, not both"),
            ]
        if kind == "reduce":
            rules.append((args["identity"] is not None and args["ratio"] is not None, "ratio",
                          "choose identity or ratio, not both"))
            rules.append((args["rank"] is not None and not args["taxonomy_aware"], "rank",
                          "a rank needs taxonomy_aware = true"))
        for broken, key, message in rules:
            if broken:
                raise self.error(path, key, f"[[step]] '{name}' {key}: {message}")

    def resolve_paths(
        self, path: TomlPath, name: str, kind: str, args: dict[str, Any], outputs: set[str]
    ) -> None:
        """Make path arguments absolute; an input must exist unless an earlier step writes it."""
        for key, arg in STEP_ARGS[kind].items():
            value = args.get(key)
            if value is None:
                continue
            if arg.role == Role.TAXON_SOURCE:
                if value in ("header", "none"):
                    continue
                role = Role.INPUT
            else:
                role = arg.role
            if role == Role.VALUE:
                continue
            paths = [self.absolute(v) for v in (value if isinstance(value, tuple) else (value,))]
            for written, absolute in zip(value if isinstance(value, tuple) else (value,), paths):
                if role in (Role.INPUT, Role.INPUT_DIR) and absolute not in outputs:
                    exists = Path(absolute).is_dir() if role == Role.INPUT_DIR else Path(absolute).is_file()
                    if not exists:
                        what = "folder" if role == Role.INPUT_DIR else "file"
                        other = " (it is a folder)" if role == Role.INPUT and Path(absolute).is_dir() else ""
                        raise self.error(path, key, f"[[step]] '{name}' {key}: input {what} '{written}' does not "
                                         f"exist{other} (looked for {absolute}; relative paths are relative to "
                                         "the job file's folder)")
            args[key] = tuple(paths) if isinstance(value, tuple) else paths[0]

    def order(self, steps: list[StepSpec]) -> tuple[StepSpec, ...]:
        """File order, except that a step runs after every step it names; a cycle is an error."""
        placed: list[StepSpec] = []
        done: set[str] = set()
        pending = list(steps)
        while pending:
            ready = next((s for s in pending if done.issuperset(s.after)), None)
            if ready is None:
                cycle = self.find_cycle({s.name: s.after for s in pending})
                first = next(s for s in pending if s.name == cycle[0])
                raise self.error(("step", first.position), "after",
                                 f"[[step]] '{first.name}' after: a cycle: {' -> '.join(cycle)}: "
                                 "remove one of these dependencies")
            pending.remove(ready)
            placed.append(ready)
            done.add(ready.name)
        return tuple(placed)

    @staticmethod
    def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
        """A cycle among ``graph``'s nodes (every node left has an unmet dependency), as a closed path."""
        start = next(iter(graph))
        path = [start]
        while True:
            nxt = next(d for d in graph[path[-1]] if d in graph)
            if nxt in path:
                return [*path[path.index(nxt):], nxt]
            path.append(nxt)
