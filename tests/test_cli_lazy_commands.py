"""The top-level app imports a command's module only when that command runs (cli/main.py, COMMANDS)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import typer.main

from talaria_storage import open_database
from talaria_storage.cli.main import COMMANDS, load_command

MODULES = sorted({module for module, _ in COMMANDS.values()})


def test_the_command_table_names_every_command_a_top_level_module_defines() -> None:
    for module in MODULES:
        attribute = next(a for m, a in COMMANDS.values() if m == module)
        if attribute != "commands":
            continue  # a group: mounted whole under its name
        group = typer.main.get_group(getattr(importlib.import_module(f"talaria_storage.cli.{module}"), attribute))
        listed = {name for name, (m, _) in COMMANDS.items() if m == module}
        assert set(group.commands) == listed, module


def test_every_listed_command_loads_under_its_own_name() -> None:
    for name in COMMANDS:
        assert load_command(name).name == name


def test_a_group_of_one_command_stays_a_group() -> None:
    assert set(load_command("index").commands) == {"rebuild"}


def test_get_in_a_fresh_process_imports_no_other_command_module(tmp_path: Path) -> None:
    fasta = tmp_path / "in.fa"
    fasta.write_text(">sp|P69905|HBA_HUMAN Hemoglobin OX=9606\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF\n")
    open_database(tmp_path / "store", "db").import_files([fasta], version="v1")
    heavy = [f"talaria_storage.cli.{m}" for m in MODULES if m != "database"] + [
        "numpy",
        "talaria_storage.reduction.building",
        "talaria_storage.jobs.runner",
        "talaria_storage.sync.protocol",
        "talaria_storage.optimization.optimizer",
    ]
    script = (
        "import sys\n"
        "from talaria_storage.cli.main import main\n"
        f"sys.argv = ['talaria-storage', '--store', {str(tmp_path / 'store')!r}, 'get', 'P69905']\n"
        "try:\n    main()\nfinally:\n"
        f"    print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(">sp|P69905|HBA_HUMAN")
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_a_command_converted_alone_has_the_options_its_whole_app_gives_it() -> None:
    for name, (module, attribute) in COMMANDS.items():
        if attribute != "commands":
            continue
        group = typer.main.get_group(getattr(importlib.import_module(f"talaria_storage.cli.{module}"), attribute))
        alone, in_app = load_command(name), group.commands[name]
        assert [p.opts for p in alone.params] == [p.opts for p in in_app.params], name
        assert alone.help == in_app.help, name
