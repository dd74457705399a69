"""Record chunks and sequence packs: round trips, determinism, random access, corruption."""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.core.errors import CompressionError, ConfigError
from talaria_storage.formats.fasta import (
    FastaRecord,
    FastqRecord,
    SequenceRecord,
    format_fasta,
    read_fasta,
)
from talaria_storage.sequences.canonical import canonical
from talaria_storage.sequences.record_chunk import (
    MAGIC,
    ChunkReader,
    apply_residue_edit,
    decode_records,
    encode_chunk,
    encode_records,
    residue_edit,
)
from talaria_storage.sequences.sequence_pack import PACK_MAGIC, PackReader, encode_pack
from talaria_storage.sequences.streams import NUC2, NUC4, RESIDUES, ZSTD, ChunkCodec

SMALL = ChunkCodec(block_size=4096)


def fasta(data: bytes) -> list[FastaRecord]:
    return list(read_fasta(io.BytesIO(data), alphabet="any"))  # random records hold any printable byte


def residue_encodings(encoded: tuple[bytes, bytes]) -> set[int]:
    return {block[0] for block in PackReader(encoded[1])._streams[RESIDUES].blocks}


def readers(encoded: tuple[bytes, bytes]) -> tuple[ChunkReader, list[PackReader]]:
    chunk, pack = encoded
    return ChunkReader(chunk), [PackReader(pack)]


def decode(encoded: tuple[bytes, bytes]) -> tuple[list[SequenceRecord], list[int]]:
    return decode_records(*encoded)


PROTEINS = fasta(
    b">sp|P1|A_HUMAN one OX=9606\nMKV\nLLA\nG\n>sp|P2|B_HUMAN two \nmkvLLAGW\n>tr|Q|C empty\n"
    b">x\r\nMK\r\n"
)


def test_fasta_records_round_trip_with_taxids() -> None:
    encoded = encode_records(PROTEINS, [9606, 9606, 0, 1])
    records, taxids = decode(encoded)
    assert records == PROTEINS and taxids == [9606, 9606, 0, 1]
    assert encoded[0].startswith(MAGIC) and encoded[1].startswith(PACK_MAGIC)


def test_fastq_records_round_trip() -> None:
    reads = [FastqRecord(b"r1", b"ACGT", b"", b"II#I"), FastqRecord(b"r2 x", b"GG", b"r2 x", b"!!")]
    records, _ = decode(encode_records(reads))
    assert records == reads


def test_same_records_give_the_same_bytes() -> None:
    assert encode_records(PROTEINS) == encode_records(list(PROTEINS))


def test_empty_chunk_round_trips() -> None:
    assert decode(encode_records([])) == ([], [])


def test_headers_live_in_the_chunk_and_canonical_residues_in_the_pack() -> None:
    chunk, pack = encode_records(PROTEINS)
    assert ChunkReader(chunk).headers() == [r.header for r in PROTEINS]
    assert PackReader(pack).sequences() == list(dict.fromkeys(canonical(r.residues) for r in PROTEINS))


def test_a_header_change_leaves_the_pack_unchanged() -> None:
    renamed = [r._replace(header=b"new " + r.header) for r in PROTEINS]
    before, after = encode_records(PROTEINS), encode_records(renamed)
    assert before[1] == after[1] and before[0] != after[0]


def test_a_sequence_carried_by_several_records_takes_one_slot() -> None:
    records = [FastaRecord(b"a", b"MKV"), FastaRecord(b"b", b"MKV"), FastaRecord(b"c", b"MKA")]
    chunk, pack = encode_records(records)
    assert PackReader(pack).sequences() == [b"MKV", b"MKA"]
    assert ChunkReader(chunk).refs() == [(0, 0), (0, 0), (0, 1)]
    assert decode_records(chunk, pack)[0] == records


def test_fastq_reads_share_a_slot_only_with_equal_qualities() -> None:
    reads = [FastqRecord(b"r1", b"AC", b"", b"II"), FastqRecord(b"r2", b"AC", b"", b"II"),
             FastqRecord(b"r3", b"AC", b"", b"#I")]
    _, pack = encode_records(reads)
    assert len(PackReader(pack)) == 2


def test_a_chunk_refers_to_slots_of_another_chunks_pack() -> None:
    _first_chunk, first_pack = encode_records([FastaRecord(b"a", b"MKVLA"), FastaRecord(b"b", b"MWW")])
    own = encode_pack([b"MQQ"])
    records = [FastaRecord(b"x", b"MQQ"), FastaRecord(b"y", b"MWW")]
    chunk = encode_chunk(
        [r.header for r in records], [r.layout for r in records], [1, 2], [(0, 0), (1, 1)],
        [hashlib.sha256(own).digest(), hashlib.sha256(first_pack).digest()],
    )
    assert ChunkReader(chunk).refs() == [(0, 0), (1, 1)]
    assert decode_records(chunk, own, first_pack) == (records, [1, 2])
    with pytest.raises(CompressionError, match="not among those given"):
        decode_records(chunk, own)


def test_a_reference_past_the_end_of_a_pack_is_a_compression_error() -> None:
    pack = encode_pack([b"MKV"])
    chunk = encode_chunk([b"a"], [FastaRecord(b"a", b"").layout], [0], [(0, 5)], [hashlib.sha256(pack).digest()])
    with pytest.raises(CompressionError, match="slot 5"):
        decode_records(chunk, pack)


def test_one_record_is_read_without_decoding_every_residue_block() -> None:
    records = [FastaRecord(f"s{i}".encode(), bytes([65 + i % 20]) * (3000 + i)) for i in range(40)]
    chunk, packs = readers(encode_records(records, codec=SMALL))
    assert chunk.record(17, packs) == records[17]
    residue_blocks = [k for k in packs[0]._block_cache if k[0] == RESIDUES]
    assert 1 <= len(residue_blocks) <= 2  # the one or two blocks the record lies in
    assert len(packs[0]._streams[RESIDUES].blocks) > 20


def test_record_spanning_blocks_is_joined() -> None:
    records = [FastaRecord(b"a", b"M" * 100), FastaRecord(b"b", b"KLV" * 5000)]
    chunk, packs = readers(encode_records(records, codec=SMALL))
    assert chunk.record(1, packs) == records[1]


def test_a_region_of_a_long_record_decodes_only_its_block() -> None:
    genome = FastaRecord(b"chr", bytes(range(65, 91)) * 2000)
    _, packs = readers(encode_records([genome], codec=SMALL))
    pack = packs[0]
    assert pack.residues(0, 30_000, 31_000) == genome.residues[30_000:31_000]
    assert [k for k in pack._block_cache if k[0] == RESIDUES] == [(RESIDUES, 7)]
    assert pack.residues(0, -5) == genome.residues[-5:]


def test_negative_index_and_out_of_range_index() -> None:
    chunk, packs = readers(encode_records(PROTEINS))
    assert chunk.record(-1, packs) == PROTEINS[-1]
    with pytest.raises(IndexError):
        chunk.record(len(PROTEINS), packs)


def test_headers_are_read_without_any_pack() -> None:
    chunk, _ = encode_records(PROTEINS)
    assert ChunkReader(chunk).headers() == [r.header for r in PROTEINS]


def random_dna(length: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"ACGT") for _ in range(length))


def test_dna_blocks_are_packed_to_four_or_two_bits() -> None:
    genome = FastaRecord(b"chr", random_dna(48_000))
    encoded = encode_records([genome])
    assert residue_encodings(encoded) <= {NUC4, NUC2}
    assert len(encoded[1]) < len(genome.residues) // 3
    assert decode(encoded)[0] == [genome]


def test_soft_masked_dna_with_n_runs_round_trips_packed() -> None:
    dna = random_dna(20_000)
    residues = dna[:5000] + b"NNNNnnnn" + dna[5000:9000].lower() + b"RY-" + dna[9000:] + b"n" * 300
    encoded = encode_records([FastaRecord(b"x", residues)])
    assert residue_encodings(encoded) & {NUC4, NUC2}
    assert decode(encoded)[0][0].residues == residues


def test_protein_blocks_are_plain_zstd() -> None:
    assert residue_encodings(encode_records(PROTEINS)) <= {ZSTD, 0}


def test_nucleotide_packing_can_be_switched_off() -> None:
    encoded = encode_records([FastaRecord(b"x", b"ACGT" * 1000)], codec=ChunkCodec(pack_nucleotides=False))
    assert residue_encodings(encoded) == {ZSTD}


def test_mixed_fasta_and_fastq_records_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        encode_records([PROTEINS[0], FastqRecord(b"r", b"A", b"", b"I")])


def test_taxid_count_must_match_records() -> None:
    with pytest.raises(ValueError, match="taxids"):
        encode_records(PROTEINS, [1])


def test_truncated_chunk_is_a_compression_error() -> None:
    chunk, _ = encode_records(PROTEINS)
    with pytest.raises(CompressionError):
        ChunkReader(chunk[:-3])


def test_corrupt_pack_block_is_a_compression_error() -> None:
    _chunk, pack = encode_records([FastaRecord(b"a", bytes(range(65, 90)) * 400)])
    damaged = bytearray(pack)
    damaged[-20:-10] = b"\xff" * 10
    with pytest.raises(CompressionError, match="sequence pack"):
        PackReader(bytes(damaged)).sequences()


def test_wrong_magic_is_refused() -> None:
    chunk, _pack = encode_records(PROTEINS)
    with pytest.raises(CompressionError, match="not a sequence chunk"):
        ChunkReader(b"XXXX" + chunk[4:])
    with pytest.raises(CompressionError, match="not a sequence pack"):
        PackReader(chunk)


def test_a_format_1_chunk_says_to_reimport_instead_of_misreading() -> None:
    old = struct.pack("<4sBBHIB", b"TSQC", 1, 0, 0, 0, 0)  # a version 1 chunk of no records
    with pytest.raises(CompressionError, match="re-import"):
        ChunkReader(old)


def test_codec_parameters_are_validated_and_round_trip_as_data() -> None:
    codec = ChunkCodec(level=7, block_size=65536, long_distance=True)
    assert ChunkCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(ConfigError):
        ChunkCodec(level=0)
    with pytest.raises(ConfigError):
        ChunkCodec(block_size=10)
    with pytest.raises(ConfigError, match="unknown"):
        ChunkCodec.from_dict({"name": "tsqc2", "colour": 1})


# ----------------------------------------------------------------------- properties

residues = st.text(alphabet="ACGTNacgtnRY-MKLVWP* ", max_size=400).map(str.encode)
headers = st.binary(min_size=1, max_size=40).map(lambda b: bytes(0x20 + x % 95 for x in b) + b"h")


@st.composite
def record_lists(draw) -> list[FastaRecord]:
    out = []
    for _ in range(draw(st.integers(0, 12))):
        seq = draw(residues)
        wrap = draw(st.integers(0, 70))
        eol = draw(st.sampled_from([b"\n", b"\r\n"]))
        text = b">" + draw(headers) + eol
        if seq:
            lines = [seq] if not wrap else [seq[i : i + wrap] for i in range(0, len(seq), wrap)]
            text += b"".join(line + eol for line in lines)
        out.extend(fasta(text))
    return out


@settings(max_examples=150, deadline=None)
@given(record_lists(), st.sampled_from([4096, 1 << 20]))
def test_random_records_round_trip_through_a_chunk(records: list[FastaRecord], block: int) -> None:
    taxids = list(range(len(records)))
    codec = ChunkCodec(block_size=block)
    encoded = encode_records(records, taxids, codec)
    back, back_taxids = decode(encoded)
    assert back == records and back_taxids == taxids
    assert b"".join(map(format_fasta, back)) == b"".join(map(format_fasta, records))
    assert encode_records(back, taxids, codec) == encoded


@settings(max_examples=50, deadline=None)
@given(record_lists())
def test_random_access_agrees_with_full_decode(records: list[FastaRecord]) -> None:
    chunk, packs = readers(encode_records(records, codec=SMALL))
    assert [chunk.record(i, packs) for i in reversed(range(len(records)))] == records[::-1]


@pytest.mark.shared_data
def test_a_real_proteome_round_trips_and_beats_its_gzip(shared_data: Path) -> None:
    path = shared_data / "protein/uniprot_proteomes/UP000002717-S.elongatus.fasta.gz"
    records = list(read_fasta(path))
    chunk, pack = encode_records(records)
    assert decode_records(chunk, pack)[0] == records
    assert len(chunk) + len(pack) < path.stat().st_size * 0.9


@pytest.mark.shared_data
def test_a_real_fastq_file_round_trips(shared_data: Path) -> None:
    from talaria_storage.formats.fasta import read_fastq

    reads = list(
        itertools.islice(read_fastq(shared_data / "fastq/seqkit_Illumina1.8_10k.fq.gz"), 2000)
    )
    assert decode(encode_records(reads))[0] == reads


def test_the_smallest_encoding_is_kept_per_block() -> None:
    periodic = FastaRecord(b"x", b"ACGTacgtNNNNnnnnRYacgtACGT-" * 500)  # raw text wins here
    random_genome = FastaRecord(b"y", random_dna(48_000))  # packed codes win here
    assert residue_encodings(encode_records([periodic])) == {ZSTD}
    assert residue_encodings(encode_records([random_genome])) <= {NUC2, NUC4}


_WRITTEN_LETTERS = b"ACGTNacgtn \t\r*-"


@given(st.binary(max_size=200).map(lambda b: bytes(_WRITTEN_LETTERS[x % len(_WRITTEN_LETTERS)] for x in b)))
def test_a_residue_edit_gives_the_written_residues_back_from_the_canonical_ones(written: bytes) -> None:
    canonical_residues, edit = residue_edit(written)
    assert canonical_residues == canonical(written)
    assert apply_residue_edit(canonical_residues, edit) == written
    assert (edit == b"") == (written == canonical(written))


def test_soft_masked_and_upper_case_copies_of_a_sequence_share_one_slot() -> None:
    records = [FastaRecord(b"a", b"ACGTACGT"), FastaRecord(b"b", b"acgtACgt"), FastaRecord(b"c", b"AC GT\tACGT")]
    chunk, pack = encode_records(records)
    assert PackReader(pack).sequences() == [b"ACGTACGT"]
    assert ChunkReader(chunk).records([PackReader(pack)]) == records
    assert [ChunkReader(chunk).record(i, [PackReader(pack)]) for i in range(3)] == records


def test_a_chunk_without_residue_edits_keeps_format_2() -> None:
    chunk, _ = encode_records([FastaRecord(b"a", b"MKV")])
    masked, _ = encode_records([FastaRecord(b"a", b"mkv")])
    assert chunk[4] == 2 and masked[4] == 3


def test_the_redundant_level_never_makes_a_gene_set_larger() -> None:
    rng = random.Random(5)
    gene = [rng.choice("ACGT") for _ in range(1500)]
    variants = []
    for _ in range(200):  # alleles: one gene with a few point mutations each
        allele = list(gene)
        for _ in range(8):
            allele[rng.randrange(len(allele))] = rng.choice("ACGT")
        variants.append("".join(allele).encode())
    records = [FastaRecord(b"g%d" % i, seq) for i, seq in enumerate(variants)]
    strong = encode_records(records)  # default: redundant_level 17, against the packed codes
    fast = encode_records(records, codec=ChunkCodec(redundant_level=3))
    assert len(strong[1]) <= len(fast[1])
    assert ChunkReader(strong[0]).records([PackReader(strong[1])]) == records


@pytest.mark.shared_data
def test_a_real_redundant_gene_set_gains_from_the_redundant_level(shared_data: Path) -> None:
    records = list(read_fasta(next((shared_data / "versions" / "resfinder").glob("*2025-12-05*"))))
    strong = encode_records(records)
    fast = encode_records(records, codec=ChunkCodec(redundant_level=3))
    assert len(strong[1]) < 0.9 * len(fast[1])
