"""Sequence databases: formats, and the database layer built on the store.

Two kinds of module live here. The *format* modules (fasta, genbank,
canonical, taxonomy, chunk_format, chunking, order, manifest) are pure and
touch no store. The *database* modules compose them with the store below
(DESIGN.md §1): importing, database, versions, diff, taxonomy_store,
collect, integrity.

Glossary:

record
    One FASTA (:class:`~talaria_storage.formats.fasta.FastaRecord`) or
    FASTQ entry: header bytes, residues as written, and a layout.
layout
    What byte-exact export needs beyond header and residues: line width (or
    explicit line lengths), line terminator, final newline.
canonical sequence
    Residues upper-cased with whitespace removed; its SHA-256 is the
    sequence's identity, and refget ``SQ.``/MD5 digests are its other names
    (:mod:`~talaria_storage.sequences.canonical`).
taxon
    An NCBI Taxonomy id; :class:`~talaria_storage.sequences.taxonomy.Taxonomy`
    gives lineage and descendants, and follows merged ids.
taxon group
    The records of one taxon, in input order; chunk boundaries are decided
    inside a group (:mod:`~talaria_storage.sequences.chunking`).
tail
    The last, unfinished piece of a taxon group; small tails of several taxa
    are packed into shared chunks.
sequence chunk (record chunk)
    A serialised list of records -- headers, layouts, taxids in separate
    compressed streams -- whose residues are references into sequence packs
    (:mod:`~talaria_storage.sequences.chunk_format`), stored through the
    chunk store like any other chunk.
sequence pack
    The residues (and FASTQ qualities) of a chunk, each distinct string
    once, in numbered slots; a chunk may also refer to slots of an earlier
    chunk's pack of the same import, so an identical sequence is stored once.

Modules:

- :mod:`.fasta` -- streaming FASTA/FASTQ readers and writers, byte-exact;
- :mod:`.genbank` -- GenBank/EMBL converted to records (not byte-exact);
- :mod:`.canonical` -- canonical form, identity and refget digests, lookup ids;
- :mod:`.taxonomy` -- NCBI taxdump, serialised taxonomy, accession maps;
- :mod:`.chunk_format` -- the versioned chunk and pack serialisation;
- :mod:`.chunking` -- deterministic taxonomy-aware chunking;
- :mod:`.importing` -- the import pipeline (parse, chunk, pack, encode, store).
"""
