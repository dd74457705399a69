"""Files other tools read and write: the Talaria reduction metadata (``deltas.dat``, ``ref2children.tsv``)."""
