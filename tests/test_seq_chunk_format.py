"""The serialised chunk: round trips, determinism, random access, corruption."""

from __future__ import annotations

import io
import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.errors import CompressionError, ConfigError
from talaria_storage.sequences.chunk_format import (
    MAGIC,
    NUC2,
    NUC4,
    RESIDUES,
    ZSTD,
    ChunkCodec,
    ChunkReader,
    decode_chunk,
    encode_chunk,
)
from talaria_storage.sequences.fasta import FastaRecord, FastqRecord, format_fasta, read_fasta

SMALL = ChunkCodec(block_size=4096)


def fasta(data: bytes) -> list[FastaRecord]:
    return list(read_fasta(io.BytesIO(data)))


def residue_encodings(chunk: bytes) -> set[int]:
    return {block[0] for block in ChunkReader(chunk)._streams[RESIDUES].blocks}


PROTEINS = fasta(
    b">sp|P1|A_HUMAN one OX=9606\nMKV\nLLA\nG\n>sp|P2|B_HUMAN two \nmkvLLAGW\n>tr|Q|C empty\n"
    b">x\r\nMK\r\n"
)


def test_fasta_records_round_trip_with_taxids() -> None:
    data = encode_chunk(PROTEINS, [9606, 9606, 0, 1])
    records, taxids = decode_chunk(data)
    assert records == PROTEINS and taxids == [9606, 9606, 0, 1]
    assert data.startswith(MAGIC)


def test_fastq_records_round_trip() -> None:
    reads = [FastqRecord(b"r1", b"ACGT", b"", b"II#I"), FastqRecord(b"r2 x", b"GG", b"r2 x", b"!!")]
    records, _ = decode_chunk(encode_chunk(reads))
    assert records == reads


def test_same_records_give_the_same_bytes() -> None:
    assert encode_chunk(PROTEINS) == encode_chunk(list(PROTEINS))


def test_empty_chunk_round_trips() -> None:
    assert decode_chunk(encode_chunk([])) == ([], [])


def test_one_record_is_read_without_decoding_every_residue_block() -> None:
    records = [FastaRecord(f"s{i}".encode(), bytes([65 + i % 20]) * 3000) for i in range(40)]
    reader = ChunkReader(encode_chunk(records, codec=SMALL))
    assert reader.record(17) == records[17]
    residue_blocks = [k for k in reader._block_cache if k[0] == RESIDUES]
    assert len(residue_blocks) == 1
    assert len(reader._streams[RESIDUES].blocks) > 20


def test_record_spanning_blocks_is_joined() -> None:
    records = [FastaRecord(b"a", b"M" * 100), FastaRecord(b"b", b"KLV" * 5000)]
    assert ChunkReader(encode_chunk(records, codec=SMALL)).record(1) == records[1]


def test_a_region_of_a_long_record_decodes_only_its_block() -> None:
    genome = FastaRecord(b"chr", bytes(range(65, 91)) * 2000)
    reader = ChunkReader(encode_chunk([genome], codec=SMALL))
    assert reader.residues(0, 30_000, 31_000) == genome.residues[30_000:31_000]
    assert [k for k in reader._block_cache if k[0] == RESIDUES] == [(RESIDUES, 7)]
    assert reader.residues(0, -5) == genome.residues[-5:]


def test_negative_index_and_out_of_range_index() -> None:
    reader = ChunkReader(encode_chunk(PROTEINS))
    assert reader.record(-1) == PROTEINS[-1]
    with pytest.raises(IndexError):
        reader.record(len(PROTEINS))


def test_headers_are_read_without_residues() -> None:
    reader = ChunkReader(encode_chunk(PROTEINS))
    assert reader.headers() == [r.header for r in PROTEINS]
    assert not [k for k in reader._block_cache if k[0] == RESIDUES]


def random_dna(length: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"ACGT") for _ in range(length))


def test_dna_blocks_are_packed_to_four_or_two_bits() -> None:
    genome = FastaRecord(b"chr", random_dna(48_000))
    chunk = encode_chunk([genome])
    assert residue_encodings(chunk) <= {NUC4, NUC2}
    assert len(chunk) < len(genome.residues) // 3
    assert decode_chunk(chunk)[0] == [genome]


def test_soft_masked_dna_with_n_runs_round_trips_packed() -> None:
    dna = random_dna(20_000)
    residues = dna[:5000] + b"NNNNnnnn" + dna[5000:9000].lower() + b"RY-" + dna[9000:] + b"n" * 300
    chunk = encode_chunk([FastaRecord(b"x", residues)])
    assert residue_encodings(chunk) & {NUC4, NUC2}
    assert decode_chunk(chunk)[0][0].residues == residues


def test_protein_blocks_are_plain_zstd() -> None:
    assert residue_encodings(encode_chunk(PROTEINS)) <= {ZSTD, 0}


def test_nucleotide_packing_can_be_switched_off() -> None:
    chunk = encode_chunk(
        [FastaRecord(b"x", b"ACGT" * 1000)], codec=ChunkCodec(pack_nucleotides=False)
    )
    assert residue_encodings(chunk) == {ZSTD}


def test_mixed_fasta_and_fastq_records_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        encode_chunk([PROTEINS[0], FastqRecord(b"r", b"A", b"", b"I")])


def test_taxid_count_must_match_records() -> None:
    with pytest.raises(ValueError, match="taxids"):
        encode_chunk(PROTEINS, [1])


def test_truncated_chunk_is_a_compression_error() -> None:
    data = encode_chunk(PROTEINS)
    with pytest.raises(CompressionError):
        ChunkReader(data[:-3])


def test_corrupt_block_is_a_compression_error() -> None:
    data = bytearray(encode_chunk([FastaRecord(b"a", bytes(range(65, 90)) * 400)]))
    data[-20:-10] = b"\xff" * 10
    with pytest.raises(CompressionError):
        decode_chunk(bytes(data))


def test_wrong_magic_is_refused() -> None:
    with pytest.raises(CompressionError, match="not a sequence chunk"):
        ChunkReader(b"XXXX" + encode_chunk(PROTEINS)[4:])


def test_codec_parameters_are_validated_and_round_trip_as_data() -> None:
    codec = ChunkCodec(level=7, block_size=65536, long_distance=True)
    assert ChunkCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(ConfigError):
        ChunkCodec(level=0)
    with pytest.raises(ConfigError):
        ChunkCodec(block_size=10)
    with pytest.raises(ConfigError, match="unknown"):
        ChunkCodec.from_dict({"name": "tsqc1", "colour": 1})


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
    data = encode_chunk(records, taxids, codec)
    back, back_taxids = decode_chunk(data)
    assert back == records and back_taxids == taxids
    assert b"".join(map(format_fasta, back)) == b"".join(map(format_fasta, records))
    assert encode_chunk(back, taxids, codec) == data


@settings(max_examples=50, deadline=None)
@given(record_lists())
def test_random_access_agrees_with_full_decode(records: list[FastaRecord]) -> None:
    reader = ChunkReader(encode_chunk(records, codec=SMALL))
    assert [reader.record(i) for i in reversed(range(len(records)))] == records[::-1]


@pytest.mark.shared_data
def test_a_real_proteome_round_trips_and_beats_its_gzip(shared_data: Path) -> None:
    path = shared_data / "protein/uniprot_proteomes/UP000002717-S.elongatus.fasta.gz"
    records = list(read_fasta(path))
    data = encode_chunk(records)
    assert decode_chunk(data)[0] == records
    assert len(data) < path.stat().st_size * 0.9


@pytest.mark.shared_data
def test_a_real_fastq_file_round_trips(shared_data: Path) -> None:
    from talaria_storage.sequences.fasta import read_fastq

    reads = list(
        itertools.islice(read_fastq(shared_data / "fastq/seqkit_Illumina1.8_10k.fq.gz"), 2000)
    )
    assert decode_chunk(encode_chunk(reads))[0] == reads


def test_the_smallest_encoding_is_kept_per_block() -> None:
    periodic = FastaRecord(b"x", b"ACGTacgtNNNNnnnnRYacgtACGT-" * 500)  # raw text wins here
    random_genome = FastaRecord(b"y", random_dna(48_000))  # packed codes win here
    assert residue_encodings(encode_chunk([periodic])) == {ZSTD}
    assert residue_encodings(encode_chunk([random_genome])) <= {NUC2, NUC4}
