"""``python -m talaria_storage``: the command line, as the ``talaria-storage`` script runs it."""

from talaria_storage.cli.main import main

main()
