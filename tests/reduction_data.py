"""Small protein families for the reduction tests: written here, seeded, so every run sees the same set."""

from __future__ import annotations

import random
from pathlib import Path

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def mutate(rng: random.Random, sequence: str, rate: float) -> str:
    """``sequence`` with about ``rate`` of its residues substituted, and an occasional short indel."""
    out = []
    for residue in sequence:
        roll = rng.random()
        if roll < rate:
            out.append(rng.choice(AMINO.replace(residue, "")))
        elif roll < rate * 1.08:
            continue  # a deletion
        else:
            out.append(residue)
        if rng.random() < rate * 0.05:
            out.append(rng.choice(AMINO))  # an insertion
    return "".join(out)


def families(seed: int = 7, count: int = 6, size: int = 5, length: int = 180) -> list[tuple[str, str, int]]:
    """(accession, residues, taxon) records: ``count`` families of ``size`` ~96 % identical variants,
    the first of each the longest; each family's taxon alternates 9606 / 10090 by member."""
    rng = random.Random(seed)
    records = []
    for f in range(count):
        base = "".join(rng.choice(AMINO) for _ in range(length + 10 * f))
        records.append((f"F{f}_0", base, 9606))
        for m in range(1, size):
            variant = mutate(rng, base, 0.04)[: len(base) - 1]  # never longer than the base
            records.append((f"F{f}_{m}", variant, 9606 if m % 2 == 0 else 10090))
    for s in range(4):  # singletons, unlike everything
        records.append((f"S{s}", "".join(rng.choice(AMINO) for _ in range(120)), 4932))
    return records


def write_fasta(path: Path, records: list[tuple[str, str, int]], width: int = 60) -> Path:
    lines = []
    for accession, residues, taxon in records:
        lines.append(f">{accession} protein OX={taxon}")
        lines.extend(residues[i : i + width] for i in range(0, len(residues), width))
    path.write_text("\n".join(lines) + "\n")
    return path
