"""The job file: what is accepted, what it means, and a one-line error naming file, line and key for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from talaria_storage.jobs import JobFileError, load_job, parse_assignments
from talaria_storage.jobs.locate import KeyLines

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

HEAD = """\
[store]
location = "store"

[vars]
release = "1"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "r1.fa").write_text(">a\nACGT\n")
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "nodes.dmp").write_text("1\t|\t1\t|\tno rank\t|\n")
    return tmp_path


def write(folder: Path, steps: str, head: str = HEAD) -> Path:
    path = folder / "job.toml"
    path.write_text(head + steps)
    return path


def error_of(path: Path, overrides: dict[str, str] | None = None) -> str:
    with pytest.raises(JobFileError) as caught:
        load_job(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


IMPORT = """
[[step]]
name = "import"
kind = "import"
database = "db"
version = "r${release}"
files = ["r${release}.fa"]
"""


# -- what a job means ---------------------------------------------------------------------------


def test_the_example_job_loads(tmp_path: Path) -> None:
    job = load_job(EXAMPLES / "job.toml")
    assert [s.name for s in job.steps] == ["taxonomy", "import", "verify", "export", "export-mammals"]
    assert job.step("import").args["files"] == (str(EXAMPLES / "sample" / "release1.fasta"),)


def test_vars_are_substituted_and_paths_are_relative_to_the_job_file(folder: Path) -> None:
    step = load_job(write(folder, IMPORT)).step("import")
    assert step.args["version"] == "r1"
    assert step.args["files"] == (str(folder / "r1.fa"),)
    assert step.args["taxonomy"] == "header"  # the default, as in the CLI


def test_set_wins_over_vars(folder: Path) -> None:
    (folder / "r2.fa").write_text(">b\nACGT\n")
    step = load_job(write(folder, IMPORT), {"release": "2"}).step("import")
    assert step.args["version"] == "r2"


def test_a_string_that_is_one_var_keeps_the_vars_type(folder: Path) -> None:
    head = HEAD + "taxon = 9606\n"
    job = load_job(write(folder, IMPORT + 'taxon = "${taxon}"\n', head))
    assert job.step("import").args["taxon"] == 9606


def test_a_set_value_is_parsed_as_the_key_expects(folder: Path) -> None:
    head = HEAD + "taxon = 1\n"
    job = load_job(write(folder, IMPORT + 'taxon = "${taxon}"\n', head), {"taxon": "9606"})
    assert job.step("import").args["taxon"] == 9606


def test_vars_may_use_other_vars_and_a_double_dollar_is_literal(folder: Path) -> None:
    head = HEAD + 'name = "db-${release}"\nnote = "$${release}"\n'
    job = load_job(write(folder, IMPORT.replace('database = "db"', 'database = "${name}"'), head))
    assert job.step("import").args["database"] == "db-1"
    assert job.vars["note"] == "${release}"


def test_a_step_runs_after_the_steps_it_names_even_when_written_first(folder: Path) -> None:
    steps = '\n[[step]]\nname = "check"\nkind = "verify"\nafter = ["import"]\n' + IMPORT
    assert [s.name for s in load_job(write(folder, steps)).steps] == ["import", "check"]


def test_an_input_written_by_an_earlier_step_need_not_exist_yet(folder: Path) -> None:
    steps = IMPORT + """
[[step]]
name = "export"
kind = "export"
database = "db"
output = "out.fa"

[[step]]
name = "again"
kind = "import"
database = "copy"
version = "v1"
files = ["out.fa"]
"""
    assert load_job(write(folder, steps)).step("again").args["files"] == (str(folder / "out.fa"),)


def test_set_assignments_must_be_name_equals_value() -> None:
    assert parse_assignments(["a=1", "b.c=x=y"]) == {"a": "1", "b.c": "x=y"}
    with pytest.raises(JobFileError, match="--set 'nonsense'"):
        parse_assignments(["nonsense"])


# -- bad input: one line, naming file, line and key ---------------------------------------------


def test_an_unknown_step_key_names_its_line_and_suggests_the_key(folder: Path) -> None:
    path = write(folder, IMPORT.replace("files =", "fils ="))
    message = error_of(path)
    assert message.startswith(f"{path}:12: [[step]] 'import' unknown key 'fils'")
    assert 'did you mean "files"?' in message


def test_an_unknown_top_level_key_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT, head="sotre = 1\n" + HEAD)
    assert error_of(path).startswith(f"{path}:1: unknown key 'sotre': did you mean \"store\"?")


def test_an_unknown_store_key_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT, head=HEAD.replace('location = "store"', 'location = "store"\ncodec = "zstd"'))
    assert error_of(path).startswith(f"{path}:3: [store] unknown key 'codec'")


def test_a_store_value_is_checked_as_storage_toml_checks_it(folder: Path) -> None:
    path = write(folder, IMPORT, head=HEAD.replace('location = "store"', 'location = "store"\ncompression_level = 23'))
    assert error_of(path).startswith(f"{path}:3: [store] compression_level = 23 is out of range: zstd levels are 1-22")


def test_an_unknown_step_kind_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT.replace('kind = "import"', 'kind = "imprt"'))
    message = error_of(path)
    assert message.startswith(f"{path}:9: [[step]] 'import' kind = \"imprt\" is not a step kind: did you mean \"import\"?")


def test_a_cycle_in_after_is_an_error(folder: Path) -> None:
    steps = """
[[step]]
name = "a"
kind = "verify"
after = ["b"]

[[step]]
name = "b"
kind = "gc"
after = ["a"]
"""
    path = write(folder, steps)
    assert error_of(path) == (f"{path}:10: [[step]] 'a' after: a cycle: a -> b -> a: remove one of these dependencies")


def test_after_naming_no_step_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT + 'after = ["imprt"]\n')
    assert error_of(path).startswith(f"{path}:13: [[step]] 'import' after: 'imprt' names no step")


def test_an_undefined_var_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT.replace("r${release}.fa", "r${relase}.fa"))
    message = error_of(path)
    assert message.startswith(f"{path}:12: [[step]] 'import' files: ${{relase}} is not defined: did you mean ${{release}}?")
    assert "--set relase=VALUE" in message


def test_a_missing_input_file_is_an_error(folder: Path) -> None:
    path = write(folder, IMPORT)
    message = error_of(path, {"release": "9"})
    assert message.startswith(f"{path}:12: [[step]] 'import' files: input file 'r9.fa' does not exist")


def test_a_missing_input_folder_is_an_error(folder: Path) -> None:
    path = write(folder, '\n[[step]]\nname = "tax"\nkind = "taxonomy"\ndir = "nodump"\n')
    assert error_of(path).startswith(f"{path}:10: [[step]] 'tax' dir: input folder 'nodump' does not exist")


def test_two_steps_with_one_name_are_an_error(folder: Path) -> None:
    path = write(folder, IMPORT + IMPORT.replace('database = "db"', 'database = "other"'))
    assert error_of(path) == (f"{path}:15: [[step]] name = \"import\" is taken by the step at line 8: "
                              "give each step its own name")


def test_a_wrong_value_type_names_the_key(folder: Path) -> None:
    path = write(folder, IMPORT + "taxon = -3\n")
    assert error_of(path).startswith(f"{path}:13: [[step]] 'import' taxon = -3 is out of range")


def test_an_import_without_a_version_says_why_it_needs_one(folder: Path) -> None:
    path = write(folder, IMPORT.replace('version = "r${release}"\n', ""))
    assert "needs a fixed version name, so that a re-run resumes" in error_of(path)


def test_options_that_exclude_each_other_are_an_error(folder: Path) -> None:
    steps = '\n[[step]]\nname = "x"\nkind = "export"\ndatabase = "db"\noutput = "o.fa"\nnormalized = true\nformat = "fasta"\n'
    path = write(folder, steps)
    assert error_of(path) == f"{path}:13: [[step]] 'x' format: choose normalized or format, not both"


def test_a_reduce_rank_without_taxonomy_aware_names_the_key(folder: Path) -> None:
    steps = '\n[[step]]\nname = "r"\nkind = "reduce"\ndatabase = "db"\nprofile = "90"\nrank = "genus"\n'
    path = write(folder, steps)
    assert error_of(path) == f"{path}:12: [[step]] 'r' rank: a rank needs taxonomy_aware = true"


def test_an_unknown_reduce_rank_lists_the_ranks(folder: Path) -> None:
    steps = '\n[[step]]\nname = "r"\nkind = "reduce"\ndatabase = "db"\nprofile = "90"\ntaxonomy_aware = true\nrank = "genre"\n'
    assert "genus" in error_of(write(folder, steps))


def test_invalid_toml_is_one_line_with_its_position(folder: Path) -> None:
    path = write(folder, "\n[[step]\n")
    assert error_of(path).startswith(f"{path}: invalid TOML:")


def test_no_steps_is_an_error(folder: Path) -> None:
    path = write(folder, "")
    assert "no steps: add [[step]] tables" in error_of(path)


# -- the line finder ------------------------------------------------------------------------------


def test_key_lines_skip_multiline_strings_and_arrays() -> None:
    text = 'a = """\nb = 1\n"""\nc = [\n  "d = 2",\n]\n[[step]]\nname = "x"\n[[step]]\nname = "y"\n'
    lines = KeyLines(text)
    assert lines.line((), "a") == 1
    assert lines.line((), "b") is None
    assert lines.line((), "c") == 4
    assert lines.line(("step", 0), "name") == 8
    assert lines.line(("step", 1), "name") == 10
    assert lines.line(("step", 1)) == 9


def test_a_verify_subset_of_zero_percent_is_an_error(folder: Path) -> None:
    path = write(folder, '\n[[step]]\nname = "v"\nkind = "verify"\nsubset = 0\n')
    assert error_of(path) == f"{path}:10: [[step]] 'v' subset = 0 is out of range: expected a percentage above 0 and at most 100"
