"""Sequence file formats: readers and writers that know nothing of stores.

record
    One FASTA (:class:`~talaria_storage.formats.fasta.FastaRecord`) or FASTQ
    (:class:`~talaria_storage.formats.fasta.FastqRecord`) entry: header bytes,
    residues as written, and a layout.
layout
    What byte-exact export needs beyond header and residues: line width (or
    explicit line lengths), line terminator, final newline.
input
    A path or binary stream, plain or gzip/bgzip/zstd/xz/bzip2 compressed,
    read in bounded pieces (:func:`~talaria_storage.formats.fasta.open_input`).

Modules: :mod:`.fasta` (FASTA and FASTQ, streaming, byte-exact) and
:mod:`.genbank` (GenBank and EMBL flat files, read through Biopython).
"""
