"""Sequence databases: the stored forms of records, and the database layer built on the store.

Two kinds of module live here. The *stored-format* modules (canonical,
taxonomy, chunking, the object kinds record_chunk, sequence_pack and order
with what they share in streams, nucleotide_blocks and varints, manifest)
are pure and touch no store. The *database* modules compose them with the
store below (DESIGN.md §1): importing, database, versions, diff,
taxonomy_store, stored_sequences, collect, integrity. File formats (FASTA,
FASTQ, GenBank/EMBL) are read and written by :mod:`talaria_storage.formats`.

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
    (:mod:`~talaria_storage.sequences.record_chunk`), stored through the
    chunk store like any other chunk.
sequence pack
    The residues (and FASTQ qualities) of a chunk, each distinct string
    once, in numbered slots; a chunk may also refer to slots of an earlier
    chunk's pack of the same import, so an identical sequence is stored once.

Modules:

- :mod:`.canonical` -- canonical form, identity and refget digests, lookup ids;
- :mod:`.taxonomy` -- NCBI taxdump, serialised taxonomy, accession maps;
- :mod:`.chunking` -- deterministic taxonomy-aware chunking;
- :mod:`.record_chunk` -- the record chunk (headers, layouts, taxids, references);
- :mod:`.sequence_pack` -- the sequence pack (each distinct sequence once, in slots);
- :mod:`.order` -- the order object (a file's records in their original order);
- :mod:`.streams` -- the container both objects use, its blocks and codec;
- :mod:`.nucleotide_blocks`, :mod:`.varints` -- the encodings streams use;
- :mod:`.manifest`, :mod:`.versions` -- a version's manifest and the refs naming it;
- :mod:`.importing` -- the import pipeline (parse, chunk, pack, encode, store);
- :mod:`.database` -- :class:`SequenceDatabase` and :func:`open_database`.
"""
