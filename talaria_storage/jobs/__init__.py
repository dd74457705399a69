"""TOML batch jobs: the job schema, step fingerprints, the runner and its log (DESIGN.md §2, §6).

``talaria-storage run job.toml`` (docs/jobs.md) runs the steps a job file
lists -- import, taxonomy, reduce, optimize, verify, gc, sync, export --
through the Python API, and re-runs it after a crash without redoing what
was done. Terms:

job
    A TOML file: a store (``[store]`` or ``config = "storage.toml"``), ``[vars]``
    and ordered ``[[step]]`` tables (:mod:`.schema`).
step
    One unit of work with a unique ``name``, a ``kind``, its CLI-like
    arguments and ``after = [...]`` dependencies (:mod:`.steps` runs each kind).
fingerprint
    SHA-256 of the canonical JSON of a step's kind, resolved arguments, input
    digests, upstream fingerprints and the engine's format versions, computed
    before it runs (:mod:`.fingerprint`).
verdict
    What the runner decides for a step: skip (fingerprint finished, outputs
    still there), resume (processing state left by a cut-off run), run (with
    the reason), blocked (a step it needs failed) (:mod:`.runner`).
log
    The job's JSON-lines record of every start, end and skip (:mod:`.log`),
    beside its lock (:mod:`.lock`) in the job's state folder.
"""

from talaria_storage.jobs.lock import JobLocked
from talaria_storage.jobs.runner import JobReport, RunOptions, StepReport, run_job
from talaria_storage.jobs.schema import Job, JobFileError, load_job, parse_assignments

__all__ = [
    "Job",
    "JobFileError",
    "JobLocked",
    "JobReport",
    "RunOptions",
    "StepReport",
    "load_job",
    "parse_assignments",
    "run_job",
]
