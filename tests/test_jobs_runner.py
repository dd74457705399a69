"""Running jobs: verdicts and their reasons, the flags, failures that leave independent steps running, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talaria_storage import open_database
from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.jobs import JobFileError, RunOptions, load_job, run_job

JOB = """\
[store]
location = "store"

[[step]]
name = "import"
kind = "import"
database = "db"
version = "v1"
files = ["r1.fa"]

[[step]]
name = "export"
kind = "export"
database = "db@v1"
output = "out/db.fa"
after = ["import"]

[[step]]
name = "verify"
kind = "verify"
after = ["import"]
"""


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    (tmp_path / "r1.fa").write_text(">sp|P1|A_HUMAN one OX=9606\nACDEFGHIK\n>sp|P2|B_HUMAN two OX=9606\nLMNPQ\n")
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    return path


def run(job_file: Path, **options: object) -> object:
    return run_job(load_job(job_file), RunOptions(**options))  # type: ignore[arg-type]


def outcomes(report: object) -> list[str]:
    return [s.outcome for s in report.steps]  # type: ignore[attr-defined]


def test_a_dry_run_gives_each_verdict_and_writes_nothing(job_file: Path) -> None:
    report = run(job_file, dry_run=True)
    assert outcomes(report) == ["would run", "would run", "would run"]
    assert report.step("import").reason == "never run"
    assert report.step("export").reason == "after import, which would run"
    assert sorted(p.name for p in job_file.parent.iterdir()) == ["job.toml", "r1.fa"]  # no store, log or lock


def test_a_dry_run_after_a_run_says_what_would_be_skipped(job_file: Path) -> None:
    first = run(job_file)
    report = run(job_file, dry_run=True)
    assert outcomes(report) == ["would skip"] * 3
    fingerprint = first.step("import").fingerprint
    assert report.step("import").reason.startswith(f"fingerprint {fingerprint[:8]}… finished ")


def test_a_changed_input_file_is_named_in_the_reason(job_file: Path) -> None:
    run(job_file)
    (job_file.parent / "r1.fa").write_text(">sp|P3|C_HUMAN three OX=9606\nACDE\n")
    report = run(job_file, dry_run=True)
    assert report.step("import").reason == "input r1.fa changed"


def test_an_import_of_changed_files_under_a_taken_version_fails_saying_so(job_file: Path) -> None:
    run(job_file)
    (job_file.parent / "r1.fa").write_text(">sp|P3|C_HUMAN three OX=9606\nACDE\n")
    report = run(job_file)
    assert report.step("import").outcome == "failed"
    assert "db@v1 already exists and was imported from other files" in report.step("import").error
    assert outcomes(report)[1:] == ["blocked", "blocked"]


def test_a_step_whose_output_is_gone_runs_again(job_file: Path) -> None:
    run(job_file)
    (job_file.parent / "out" / "db.fa").unlink()
    report = run(job_file)
    assert outcomes(report) == ["skipped", "ok", "skipped"]
    assert report.step("export").reason.endswith("but output out/db.fa is gone")


def test_an_import_cut_off_after_it_published_is_taken_as_done(job_file: Path) -> None:
    run(job_file)
    log = job_file.parent / ".talaria-jobs" / "job" / "log.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if '"end"' in line and '"import"' in line)
    log.write_text("".join(lines[:end]))  # as if killed between publishing and logging the end
    report = run(job_file)
    assert report.step("import").reason.startswith("cut off at ")
    assert report.step("import").summary == "db@v1 was already imported from these files"


def test_force_runs_every_step(job_file: Path) -> None:
    run(job_file)
    report = run(job_file, force=True)
    assert outcomes(report) == ["ok", "ok", "ok"]
    assert {s.reason for s in report.steps} == {"--force"}


def test_only_runs_one_step(job_file: Path) -> None:
    run(job_file)
    report = run(job_file, only="export", force=True)
    assert outcomes(report) == ["not selected", "ok", "not selected"]


def test_from_starts_at_a_step(job_file: Path) -> None:
    report = run(job_file, start_from="export")
    assert outcomes(report) == ["not selected", "blocked", "blocked"]
    assert report.step("export").reason == "after import, which has never finished"
    run(job_file)
    assert outcomes(run(job_file, start_from="export", force=True)) == ["not selected", "ok", "ok"]


def test_an_unknown_step_name_in_a_flag_is_an_error(job_file: Path) -> None:
    with pytest.raises(JobFileError, match="--only 'exprt' names no step"):
        run(job_file, only="exprt")


def test_a_failed_step_blocks_its_dependents_and_the_others_still_run(job_file: Path) -> None:
    text = JOB.replace('database = "db@v1"', 'database = "nosuchdb@v1"')
    text += '\n[[step]]\nname = "after-export"\nkind = "gc"\nafter = ["export"]\n'
    text += '\n[[step]]\nname = "independent"\nkind = "gc"\ngrace = 0\n'
    job_file.write_text(text)
    report = run(job_file)
    assert outcomes(report) == ["ok", "failed", "ok", "blocked", "ok"]
    assert "nosuchdb" in report.step("export").error
    assert report.step("after-export").reason == "after export, which failed"
    assert not report.ok


def test_a_reduce_step_publishes_the_profile_and_is_skipped_when_run_again(job_file: Path) -> None:
    job_file.write_text(JOB + '\n[[step]]\nname = "reduce"\nkind = "reduce"\ndatabase = "db"\nprofile = "90"\n'
                        'identity = 0.9\nafter = ["import"]\n')
    report = run(job_file)
    assert outcomes(report) == ["ok", "ok", "ok", "ok"]
    assert "2 references, 0 members" in report.step("reduce").summary
    again = run(job_file)
    assert again.step("reduce").outcome == "skipped"


def test_an_import_step_with_an_id_regex_makes_its_matches_look_up_keys(job_file: Path) -> None:
    job_file.write_text(JOB.replace('files = ["r1.fa"]', 'files = ["r1.fa"]\nid_regex = "OX=(\\\\d+)"'))
    assert outcomes(run(job_file)) == ["ok", "ok", "ok"]
    db = open_database(job_file.parent / "store", "db")
    assert [r.id for r in db.get_all("9606")] == ["sp|P1|A_HUMAN", "sp|P2|B_HUMAN"]


def test_an_optimize_step_runs_the_optimizer_and_the_export_stays_byte_exact(job_file: Path) -> None:
    job_file.write_text(JOB + '\n[[step]]\nname = "optimize"\nkind = "optimize"\ngrace = 0\n'
                        'strategy = ["deduplication", "compression", "gc"]\nafter = ["export", "verify"]\n'
                        '\n[[step]]\nname = "again"\nkind = "export"\ndatabase = "db@v1"\n'
                        'output = "out/again.fa"\nafter = ["optimize"]\n')
    report = run(job_file)
    assert outcomes(report) == ["ok", "ok", "ok", "ok", "ok"]
    assert report.step("optimize").summary.startswith("saved ")
    folder = job_file.parent
    assert (folder / "out" / "again.fa").read_bytes() == (folder / "r1.fa").read_bytes()


def test_an_optimize_step_is_skipped_on_a_rerun_when_no_version_changed(job_file: Path) -> None:
    job_file.write_text(JOB + '\n[[step]]\nname = "optimize"\nkind = "optimize"\nafter = ["import"]\n')
    run(job_file)
    assert outcomes(run(job_file)) == ["skipped", "skipped", "skipped", "skipped"]


def test_every_step_is_logged_with_fingerprint_outcome_bytes_and_seconds(job_file: Path) -> None:
    run(job_file)
    events = [json.loads(line) for line in (job_file.parent / ".talaria-jobs" / "job" / "log.jsonl").open()]
    ends = [e for e in events if e["event"] == "end"]
    assert [e["step"] for e in ends] == ["import", "export", "verify"]
    for e in ends:
        assert e["outcome"] == "ok" and len(e["fingerprint"]) == 64
        assert isinstance(e["bytes"], int) and isinstance(e["seconds"], float)
    assert events[0]["event"] == "job-start" and events[-1]["event"] == "job-end"


# -- the command line -----------------------------------------------------------------------------


def cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_run_json_prints_the_report(job_file: Path) -> None:
    result = cli("run", str(job_file), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [s["outcome"] for s in report["steps"]] == ["ok", "ok", "ok"]


def test_run_without_a_terminal_prints_plain_lines(job_file: Path) -> None:
    result = cli("run", str(job_file))
    assert "[1/3] import (import): run: never run" in result.stderr
    assert "[2/3] export (export): ok in " in result.stderr


def test_run_exits_one_when_a_step_failed(job_file: Path) -> None:
    job_file.write_text(JOB.replace('database = "db@v1"', 'database = "db@v9"'))
    result = cli("run", str(job_file), "--json")
    assert result.exit_code == EXIT_FAILURE
    assert json.loads(result.stdout)["ok"] is False


def test_run_of_a_bad_job_file_is_one_line_and_exit_two(job_file: Path) -> None:
    job_file.write_text(JOB.replace('kind = "verify"', 'kind = "verfy"'))
    result = cli("run", str(job_file))
    assert result.exit_code == EXIT_USAGE
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {job_file}:20: [[step]] 'verify' kind = \"verfy\" is not a step kind")


def test_the_global_store_option_wins_over_the_jobs_store(job_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    result = cli("--store", str(other), "run", str(job_file), "--only", "import")
    assert result.exit_code == 0, result.output
    assert (other / "store.json").exists() and not (tmp_path / "store").exists()


def test_a_sync_step_pushes_and_is_skipped_while_the_remote_still_has_it(job_file: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    job_file.write_text(JOB + f'\n[[step]]\nname = "push"\nkind = "sync"\ndirection = "push"\nremote = "{remote}"\n'
                        'database = ["db"]\nafter = ["import"]\n')
    first = run(job_file)
    assert first.step("push").outcome == "ok" and first.step("push").bytes > 0
    assert (remote / "store.json").exists()
    assert run(job_file).step("push").outcome == "skipped"


def test_a_taxonomy_step_stores_the_dump_of_the_sample(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "examples" / "sample" / "taxdump"
    path = tmp_path / "job.toml"
    path.write_text(f'[store]\nlocation = "store"\n\n[[step]]\nname = "tax"\nkind = "taxonomy"\ndir = "{sample}"\n'
                    'version = "t1"\n')
    report = run(path)
    assert report.step("tax").summary == "stored taxonomy t1: 32 taxa"
    assert run(path).step("tax").outcome == "skipped"


def test_a_dry_run_of_a_push_creates_no_remote(job_file: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    job_file.write_text(JOB + f'\n[[step]]\nname = "push"\nkind = "sync"\ndirection = "push"\nremote = "{remote}"\n')
    run(job_file, only="import")
    report = run(job_file, dry_run=True, only="push")
    assert report.step("push").outcome == "would run"
    assert not remote.exists()
