"""A small, realistic sample database, generated deterministically (no network, fixed seed).

What it is for: the README's main job (``make demo``) and tests need a sequence database
that ships with the repository, has the features real ones have, and is small. Run::

    python -m talaria_storage.sequences.sample OUTDIR

to write these files (the copies in ``examples/sample/`` are exactly this output; a test
regenerates them and compares byte for byte, so they cannot drift from this code):

``release1.fasta``, ``release2.fasta``
    About 400 protein records with UniProt headers
    (``sp|ACC|NAME_SPECIES desc OS=... OX=taxid GN=... PE=n SV=n``) in seven organisms.
    Release 2 is the "next release" of release 1: records removed and added, headers
    rewritten (TrEMBL entries promoted to Swiss-Prot, evidence levels changed), records
    reclassified to another taxon, sequences updated (``SV`` + 1), so ``diff`` has
    something to show.
``taxdump/nodes.dmp``, ``names.dmp``, ``merged.dmp``, ``delnodes.dmp``
    A tiny NCBI taxdump in NCBI's own ``\\t|\\t`` layout covering those organisms.
``accession2taxid.tsv``
    Accession -> taxid for every accession of both releases, as of release 2 (like
    NCBI's, a map is a snapshot: reclassified accessions have their new taxon), in
    NCBI's ``accession2taxid`` layout (``accession  accession.version  taxid  gi``; gi is 0).
``README.md``
    What the files are, with their counts.

How the sequences are made, and why that way: proteins are *simulated*, not random.
Each family starts from an ancestor drawn from UniProt's amino-acid frequencies and is
evolved down the taxonomy tree (substitutions and short indels, at a rate per branch),
so orthologues in close organisms (*E. coli* and *Salmonella*, human and mouse) are
similar, as in life, and paralogues are mutated copies. A few sequences are exact
duplicates under different accessions (*E. coli*'s identical EF-Tu genes ``tufA`` and
``tufB``, conserved proteins identical in *E. coli* and *Salmonella*, a TrEMBL entry
repeating a Swiss-Prot one), so dedup has something real to find. A sample of
independent random sequences would not compress at all (lossless compression of random
data is impossible), and no ratio measured on this sample says anything about real data:
real figures are in ``benchmarks/README.md``, measured on real files.

Byte-exact export gets its test cases too: two records are soft-masked (lower-case
runs, one wholly lower case), two are wrapped at 80 columns and one is on a single line
instead of 60-column lines, and one header ends in a space. One record carries the
taxid 662101, which NCBI merged into 562 (*Escherichia coli*): ``merged.dmp`` resolves
it. ``delnodes.dmp`` lists 41512, a *Salmonella* node of the 2013 NCBI dump that the
2014 dump no longer has; no record uses it.

Taxonomy: real NCBI ids, names and ranks, trimmed to the nodes the sample needs; a kept
node's parent is its nearest kept ancestor (so "Mammalia" is the parent of "Homo").
Accessions have UniProt's shape but are made up, and so are the sequences; only the
gene and protein names are real.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

SEED = 20240229
LINE_WIDTH = 60

# ---------------------------------------------------------------------------------------------
# Taxonomy: (taxid, parent, rank, scientific name, division id, genetic code, mito code)
# and the substitution rate on the branch from the parent (per site).

# fmt: off
TAXA: tuple[tuple[int, int, str, str, int, int, int, float], ...] = (
    (1, 1, "no rank", "root", 8, 1, 0, 0.0),
    (131567, 1, "no rank", "cellular organisms", 8, 1, 0, 0.0),
    (2, 131567, "superkingdom", "Bacteria", 0, 11, 0, 0.28),
    (1224, 2, "phylum", "Proteobacteria", 0, 11, 0, 0.10),
    (1236, 1224, "class", "Gammaproteobacteria", 0, 11, 0, 0.05),
    (91347, 1236, "order", "Enterobacterales", 0, 11, 0, 0.03),
    (543, 91347, "family", "Enterobacteriaceae", 0, 11, 0, 0.03),
    (561, 543, "genus", "Escherichia", 0, 11, 0, 0.03),
    (562, 561, "species", "Escherichia coli", 0, 11, 0, 0.01),
    (83333, 562, "no rank", "Escherichia coli K-12", 0, 11, 0, 0.002),
    (590, 543, "genus", "Salmonella", 0, 11, 0, 0.03),
    (28901, 590, "species", "Salmonella enterica", 0, 11, 0, 0.01),
    (90371, 28901, "no rank", "Salmonella enterica subsp. enterica serovar Typhimurium", 0, 11, 0, 0.005),
    (99287, 90371, "no rank", "Salmonella enterica subsp. enterica serovar Typhimurium str. LT2", 0, 11, 0, 0.002),
    (1117, 2, "phylum", "Cyanobacteria", 0, 11, 0, 0.12),
    (1142, 1117, "genus", "Synechocystis", 0, 11, 0, 0.05),
    (1148, 1142, "species", "Synechocystis sp. PCC 6803", 0, 11, 0, 0.01),
    (2759, 131567, "superkingdom", "Eukaryota", 1, 1, 1, 0.28),
    (4751, 2759, "kingdom", "Fungi", 4, 1, 4, 0.15),
    (4930, 4751, "genus", "Saccharomyces", 4, 1, 3, 0.05),
    (4932, 4930, "species", "Saccharomyces cerevisiae", 4, 1, 3, 0.02),
    (559292, 4932, "no rank", "Saccharomyces cerevisiae S288C", 4, 1, 3, 0.002),
    (5794, 2759, "phylum", "Apicomplexa", 1, 1, 4, 0.20),
    (5820, 5794, "genus", "Plasmodium", 1, 1, 4, 0.05),
    (5833, 5820, "species", "Plasmodium falciparum", 1, 1, 4, 0.02),
    (36329, 5833, "no rank", "Plasmodium falciparum 3D7", 1, 1, 4, 0.002),
    (33208, 2759, "kingdom", "Metazoa", 1, 1, 1, 0.15),
    (40674, 33208, "class", "Mammalia", 2, 1, 2, 0.08),
    (9605, 40674, "genus", "Homo", 5, 1, 2, 0.04),
    (9606, 9605, "species", "Homo sapiens", 5, 1, 2, 0.01),
    (10088, 40674, "genus", "Mus", 6, 1, 2, 0.04),
    (10090, 10088, "species", "Mus musculus", 6, 1, 2, 0.01),
)
# fmt: on
# Real rows of NCBI's merged.dmp (old id -> id it was merged into) and a real removed node.
MERGED = ((591, 28901), (662101, 562), (662104, 562), (85055, 10090), (870965, 99287))
DELETED = (41512,)
MERGED_RECORD_TAXID = 662101


@dataclass(frozen=True, slots=True)
class Organism:
    """An organism records are labelled with: its taxid and UniProt's names for it."""

    taxid: int
    mnemonic: str  # UniProt species code, the suffix of entry names
    os_name: str  # the OS= text of UniProt headers
    eukaryote: bool


ORGANISMS = (
    Organism(83333, "ECOLI", "Escherichia coli (strain K12)", False),
    Organism(99287, "SALTY", "Salmonella typhimurium (strain LT2 / SGSC1412 / ATCC 700720)", False),
    Organism(1148, "SYNY3", "Synechocystis sp. (strain ATCC 27184 / PCC 6803 / Kazusa)", False),
    Organism(559292, "YEAST", "Saccharomyces cerevisiae (strain ATCC 204508 / S288c)", True),
    Organism(36329, "PLAF7", "Plasmodium falciparum (isolate 3D7)", True),
    Organism(9606, "HUMAN", "Homo sapiens", True),
    Organism(10090, "MOUSE", "Mus musculus", True),
)
# Records of E. coli strains other than K-12, labelled at species level (UniProt's ECOLX).
ECOLX = Organism(562, "ECOLX", "Escherichia coli", False)

# Protein families: (gene, protein name, taxid of the clade it lives in, paralogues per organism).
FAMILIES: tuple[tuple[str, str, int, int], ...] = (
    ("tuf", "Elongation factor Tu", 131567, 1),
    ("fusA", "Elongation factor G", 131567, 1),
    ("dnaK", "Chaperone protein DnaK", 131567, 2),
    ("groL", "Chaperonin GroEL", 131567, 1),
    ("eno", "Enolase", 131567, 1),
    ("gapA", "Glyceraldehyde-3-phosphate dehydrogenase", 131567, 2),
    ("pgk", "Phosphoglycerate kinase", 131567, 1),
    ("tpiA", "Triosephosphate isomerase", 131567, 1),
    ("atpA", "ATP synthase subunit alpha", 131567, 1),
    ("atpD", "ATP synthase subunit beta", 131567, 1),
    ("rpsL", "Small ribosomal subunit protein uS12", 131567, 1),
    ("rplB", "Large ribosomal subunit protein uL2", 131567, 1),
    ("rpsG", "Small ribosomal subunit protein uS7", 131567, 1),
    ("rplE", "Large ribosomal subunit protein uL5", 131567, 1),
    ("rpoB", "DNA-directed RNA polymerase subunit beta", 131567, 1),
    ("recA", "Protein RecA", 131567, 1),
    ("sodA", "Superoxide dismutase [Mn]", 131567, 1),
    ("trxA", "Thioredoxin", 131567, 2),
    ("adk", "Adenylate kinase", 131567, 1),
    ("metK", "S-adenosylmethionine synthase", 131567, 1),
    ("gyrA", "DNA gyrase subunit A", 2, 1),
    ("gyrB", "DNA gyrase subunit B", 2, 1),
    ("ftsZ", "Cell division protein FtsZ", 2, 1),
    ("dnaA", "Chromosomal replication initiator protein DnaA", 2, 1),
    ("secA", "Protein translocase subunit SecA", 2, 1),
    ("murA", "UDP-N-acetylglucosamine 1-carboxyvinyltransferase", 2, 1),
    ("lpxC", "UDP-3-O-acyl-N-acetylglucosamine deacetylase", 2, 1),
    ("rpoD", "RNA polymerase sigma factor RpoD", 2, 2),
    ("infB", "Translation initiation factor IF-2", 2, 1),
    ("clpP", "ATP-dependent Clp protease proteolytic subunit", 2, 2),
    ("ompA", "Outer membrane protein A", 543, 1),
    ("ompC", "Outer membrane porin C", 543, 1),
    ("lacZ", "Beta-galactosidase", 543, 1),
    ("crp", "cAMP-activated global transcriptional regulator CRP", 543, 1),
    ("fliC", "Flagellin", 543, 2),
    ("acrB", "Multidrug efflux pump subunit AcrB", 543, 1),
    ("rpoS", "RNA polymerase sigma factor RpoS", 543, 1),
    ("psbA", "Photosystem II protein D1", 1117, 2),
    ("rbcL", "Ribulose bisphosphate carboxylase large chain", 1117, 1),
    ("actB", "Actin", 2759, 2),
    ("tubA", "Tubulin alpha chain", 2759, 2),
    ("tubB", "Tubulin beta chain", 2759, 1),
    ("hsp90", "Heat shock protein HSP 90", 2759, 2),
    ("cdc28", "Cyclin-dependent kinase 1", 2759, 1),
    ("ubi", "Polyubiquitin", 2759, 1),
    ("h3", "Histone H3", 2759, 2),
    ("h4", "Histone H4", 2759, 1),
    ("pcna", "Proliferating cell nuclear antigen", 2759, 1),
    ("ran", "GTP-binding nuclear protein Ran", 2759, 1),
    ("cam", "Calmodulin", 2759, 1),
    ("tp53", "Cellular tumor antigen p53", 40674, 1),
    ("alb", "Albumin", 40674, 1),
    ("ins", "Insulin", 40674, 1),
    ("hba", "Hemoglobin subunit alpha", 40674, 2),
    ("hbb", "Hemoglobin subunit beta", 40674, 2),
    ("egfr", "Epidermal growth factor receptor", 40674, 1),
    ("csp", "Circumsporozoite protein", 5820, 1),
    ("ama1", "Apical membrane antigen 1", 5820, 1),
    ("msp1", "Merozoite surface protein 1", 5820, 2),
    ("gal4", "Regulatory protein GAL4", 4751, 1),
    ("ste2", "Pheromone alpha factor receptor", 4751, 1),
)
# Families whose E. coli and Salmonella proteins are identical (as conserved ones often are).
SHARED_ENTEROBACTERIAL = ("rpsL", "rplE", "trxA", "crp")

# UniProt's amino-acid composition (percent), for ancestors and inserted residues.
AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYV"
COMPOSITION = (
    8.25,
    5.53,
    4.06,
    5.45,
    1.37,
    3.93,
    6.75,
    7.07,
    2.27,
    5.96,
    9.66,
    5.84,
    2.42,
    3.86,
    4.70,
    6.56,
    5.34,
    1.08,
    2.92,
    6.87,
)


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One record of the sample, before it is written as FASTA."""

    family: str  # the FAMILIES gene it descends from (not written)
    reviewed: bool  # sp| (Swiss-Prot) or tr| (TrEMBL)
    accession: str
    entry_name: str
    protein: str
    organism: Organism
    taxid: int  # usually organism.taxid; differs for the merged-taxid record
    gene: str | None
    evidence: int  # PE=
    version: int  # SV=
    sequence: str  # as written: may be partly lower case
    width: int = LINE_WIDTH  # 0: one line
    header_suffix: str = ""  # e.g. a trailing space

    def header(self) -> str:
        prefix = "sp" if self.reviewed else "tr"
        gene = f" GN={self.gene}" if self.gene else ""
        return (
            f"{prefix}|{self.accession}|{self.entry_name} {self.protein} OS={self.organism.os_name} "
            f"OX={self.taxid}{gene} PE={self.evidence} SV={self.version}{self.header_suffix}"
        )

    def fasta(self) -> str:
        seq = self.sequence
        lines = (
            [seq[i : i + self.width] for i in range(0, len(seq), self.width)]
            if self.width
            else [seq]
        )
        return ">" + self.header() + "\n" + "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Sequence evolution


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for taxid, parent, *_ in TAXA:
        if taxid != parent:
            kids.setdefault(parent, []).append(taxid)
    return kids


_RATE = {row[0]: row[7] for row in TAXA}


def _random_residues(rng: random.Random, n: int) -> list[str]:
    return rng.choices(AMINO_ACIDS, weights=COMPOSITION, k=n)


def _mutate(rng: random.Random, seq: str, rate: float) -> str:
    """Substitutions at ``rate`` per site, short indels at a twentieth of it; M1 is kept."""
    out = [seq[0]]
    i = 1
    while i < len(seq):
        roll = rng.random()
        if roll < rate:
            out.append(_random_residues(rng, 1)[0])
        elif roll < rate * 1.025:
            i += rng.randint(1, 3)  # deletion
            continue
        elif roll < rate * 1.05:
            out.append(seq[i])
            out.extend(_random_residues(rng, rng.randint(1, 3)))  # insertion
        else:
            out.append(seq[i])
        i += 1
    return "".join(out)


def _evolve(rng: random.Random, node: int, seq: str, kids: dict[int, list[int]]) -> dict[int, str]:
    """The family's sequence at every node below ``node`` (``seq`` is the one at ``node``)."""
    found = {node: seq}
    for child in kids.get(node, []):
        found.update(_evolve(rng, child, _mutate(rng, seq, _RATE[child]), kids))
    return found


def _low_complexity(rng: random.Random) -> str:
    """An asparagine-rich run, as Plasmodium proteins have (the textbook soft-masking target)."""
    return "".join(rng.choice("NNNNNNDKS") for _ in range(rng.randint(12, 30)))


# ---------------------------------------------------------------------------------------------
# Names


class _Accessions:
    """Unique UniProt-shaped accessions: ``[OPQ]n...n`` for Swiss-Prot, ``A0A...`` for TrEMBL."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _alnum(self) -> str:
        return self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    def new(self, reviewed: bool) -> str:
        while True:
            d = self.rng.randint
            if reviewed:
                acc = f"{self.rng.choice('OPQ')}{d(0, 9)}{self._alnum()}{self._alnum()}{self._alnum()}{d(0, 9)}"
            else:
                letter = self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                acc = f"A0A{self._alnum()}{self._alnum()}{d(0, 9)}{letter}{self._alnum()}{self._alnum()}{d(0, 9)}"
            if acc not in self.used:
                self.used.add(acc)
                return acc


def _gene_name(gene: str, organism: Organism, copy: int) -> str:
    name = gene.upper() if organism.eukaryote else gene
    return name + (str(copy + 1) if copy else "")


def _entry_name(gene: str, organism: Organism, copy: int, used: set[str]) -> str:
    stem = gene.upper().replace("-", "")[:5] + (str(copy + 1) if copy else "")
    name = f"{stem}_{organism.mnemonic}"
    n = 2
    while name in used:
        name = f"{stem}{n}_{organism.mnemonic}"
        n += 1
    used.add(name)
    return name


def _record(
    rng: random.Random,
    accessions: _Accessions,
    entry_names: set[str],
    family: str,
    gene: str,
    protein: str,
    organism: Organism,
    copy: int,
    sequence: str,
    reviewed: bool | None = None,
) -> SampleRecord:
    """A record with a new accession; Swiss-Prot or TrEMBL by chance unless ``reviewed`` says."""
    chance = rng.random() < 0.45
    reviewed = chance if reviewed is None else reviewed
    accession = accessions.new(reviewed)
    if reviewed:
        entry = _entry_name(gene, organism, copy, entry_names)
        evidence = rng.choice((1, 1, 1, 2, 3))
    else:
        entry = f"{accession}_{organism.mnemonic}"
        evidence = rng.choice((1, 3, 3, 4))
    named = reviewed or rng.random() < 0.8
    return SampleRecord(
        family=family,
        reviewed=reviewed,
        accession=accession,
        entry_name=entry,
        protein=protein if named else "Uncharacterized protein",
        organism=organism,
        taxid=organism.taxid,
        gene=_gene_name(gene, organism, copy) if named else None,
        evidence=evidence,
        version=rng.choice((1, 1, 1, 2, 3)),
        sequence=sequence,
    )


# ---------------------------------------------------------------------------------------------
# Releases


def _release1(seed: int) -> list[SampleRecord]:
    """Every family evolved down the tree, one record per paralogue per organism, then extras."""
    rng = random.Random(f"{seed}:names")
    accessions = _Accessions(rng)
    entry_names: set[str] = set()
    kids = _children()
    by_organism: dict[int, list[SampleRecord]] = {o.taxid: [] for o in (*ORGANISMS, ECOLX)}
    ecoli_seq: dict[str, str] = {}
    for gene, protein, clade, paralogues in FAMILIES:
        frng = random.Random(f"{seed}:family:{gene}")
        length = (
            frng.randint(70, 330)
            if gene not in ("ubi", "h4", "ins", "cam")
            else frng.randint(60, 150)
        )
        ancestor = "M" + "".join(_random_residues(frng, length - 1))
        at_node = _evolve(frng, clade, ancestor, kids)
        for organism in ORGANISMS:
            if organism.taxid not in at_node:
                continue
            seq = at_node[organism.taxid]
            if organism.taxid == 36329 and frng.random() < 0.5:
                cut = frng.randint(len(seq) // 3, 2 * len(seq) // 3)
                seq = seq[:cut] + _low_complexity(frng) + seq[cut:]
            if organism.taxid == 99287 and gene in SHARED_ENTEROBACTERIAL:
                seq = ecoli_seq[gene]
            if organism.taxid == 83333:
                ecoli_seq[gene] = seq
            if organism.taxid == 83333 and gene == "tuf":  # tufA and tufB: two genes, one protein
                for name in ("tufA", "tufB"):
                    by_organism[83333].append(
                        _record(
                            rng,
                            accessions,
                            entry_names,
                            gene,
                            name,
                            protein,
                            organism,
                            0,
                            seq,
                            reviewed=True,
                        )
                    )
                continue
            copies = [seq] + [_mutate(frng, seq, 0.15) for _ in range(1, paralogues)]
            for copy, paralogue in enumerate(copies):
                by_organism[organism.taxid].append(
                    _record(
                        rng, accessions, entry_names, gene, gene, protein, organism, copy, paralogue
                    )
                )
        if (
            83333 in at_node and frng.random() < 0.35
        ):  # the same protein from another E. coli strain
            strain = _mutate(frng, at_node[83333], 0.01)
            by_organism[562].append(
                _record(rng, accessions, entry_names, gene, gene, protein, ECOLX, 0, strain)
            )
    records = [r for o in (*ORGANISMS, ECOLX) for r in by_organism[o.taxid]]
    return _byte_exact_cases(accessions, records)


def _byte_exact_cases(accessions: _Accessions, records: list[SampleRecord]) -> list[SampleRecord]:
    """Soft-masking, other line widths, a trailing space, a merged taxid, a TrEMBL duplicate."""
    out = list(records)

    def pick(taxid: int, nth: int) -> int:
        return [i for i, r in enumerate(out) if r.organism.taxid == taxid][nth]

    # Plasmodium: the low-complexity run in lower case; one yeast protein wholly lower case.
    i = next(i for i, r in enumerate(out) if r.organism.taxid == 36329 and "NNNN" in r.sequence)
    seq = out[i].sequence
    start = seq.index("NNNN")
    end = start
    while end < len(seq) and seq[end] in "NDKS":
        end += 1
    out[i] = replace(out[i], sequence=seq[:start] + seq[start:end].lower() + seq[end:])
    i = pick(559292, 3)
    out[i] = replace(out[i], sequence=out[i].sequence.lower())
    for taxid, nth, width in ((1148, 2, 80), (9606, 5, 80), (10090, 1, 0)):
        i = pick(taxid, nth)
        out[i] = replace(out[i], width=width)
    i = pick(99287, 4)
    out[i] = replace(out[i], header_suffix=" ")
    i = pick(562, 0)
    out[i] = replace(out[i], taxid=MERGED_RECORD_TAXID)
    # A TrEMBL entry with the very sequence of a human Swiss-Prot entry.
    original = next(r for r in out if r.organism.taxid == 9606 and r.reviewed)
    accession = accessions.new(False)
    duplicate = replace(
        original,
        reviewed=False,
        accession=accession,
        entry_name=f"{accession}_HUMAN",
        evidence=4,
        version=1,
    )
    out.insert(out.index(original) + 1, duplicate)
    return out


def _release2(seed: int, first: list[SampleRecord]) -> list[SampleRecord]:
    """Release 1 a year on: removals, additions, new headers, new taxa, new sequence versions."""
    rng = random.Random(f"{seed}:release2")
    accessions = _Accessions(rng)
    accessions.used.update(r.accession for r in first)
    entry_names = {r.entry_name for r in first}
    records = list(first)
    paralogues = {gene: n for gene, _, _, n in FAMILIES}
    # The byte-exact cases stay as they are, and no record gets two kinds of change.
    touched = {
        i
        for i, r in enumerate(records)
        if r.width != LINE_WIDTH
        or r.header_suffix
        or r.sequence != r.sequence.upper()
        or r.taxid != r.organism.taxid
    }

    def candidates(predicate: Callable[[SampleRecord], bool], n: int) -> list[int]:
        chosen = rng.sample(
            [i for i, r in enumerate(records) if i not in touched and predicate(r)], n
        )
        touched.update(chosen)
        return chosen

    # Reclassified: strain-less E. coli records (and the merged taxid) moved to K-12.
    k12 = next(o for o in ORGANISMS if o.taxid == 83333)
    for i in [i for i, r in enumerate(records) if r.organism is ECOLX][:4]:
        touched.add(i)
        records[i] = replace(
            records[i],
            organism=k12,
            taxid=k12.taxid,
            entry_name=records[i].entry_name.replace("_ECOLX", "_ECOLI"),
        )
    # Headers rewritten: TrEMBL entries promoted to Swiss-Prot, evidence levels revised.
    for i in candidates(lambda r: not r.reviewed and r.gene is not None, 8):
        r = records[i]
        records[i] = replace(
            r,
            reviewed=True,
            entry_name=_entry_name(r.gene or "", r.organism, 0, entry_names),
            evidence=1,
        )
    for i in candidates(lambda r: r.reviewed and r.evidence > 1, 5):
        records[i] = replace(records[i], evidence=1)
    # New sequence versions: a point mutation, SV + 1.
    for i in candidates(lambda r: True, 6):
        r = records[i]
        pos = rng.randrange(1, len(r.sequence))
        new = _random_residues(rng, 1)[0]
        records[i] = replace(
            r, sequence=r.sequence[:pos] + new + r.sequence[pos + 1 :], version=r.version + 1
        )
    # Removed.
    removed = set(candidates(lambda r: True, 12))
    records = [r for i, r in enumerate(records) if i not in removed]
    # Added: new paralogues of existing proteins, and a new family in the Enterobacteriaceae.
    added: list[SampleRecord] = []
    for r in rng.sample(
        [r for r in records if r.sequence == r.sequence.upper() and r.family != "tuf"], 14
    ):
        copy = paralogues[r.family]  # the next number after the existing paralogues
        added.append(
            _record(
                rng,
                accessions,
                entry_names,
                r.family,
                r.family,
                r.protein,
                r.organism,
                copy,
                _mutate(rng, r.sequence, 0.12),
            )
        )
    kids = _children()
    ancestor = "M" + "".join(_random_residues(rng, 240))
    at_node = _evolve(rng, 543, ancestor, kids)
    for organism in ORGANISMS:
        if organism.taxid in at_node:
            added.append(
                _record(
                    rng,
                    accessions,
                    entry_names,
                    "mcr1",
                    "mcr1",
                    "Phosphatidylethanolamine transferase Mcr-1",
                    organism,
                    0,
                    at_node[organism.taxid],
                )
            )
    for record in added:  # each new record goes after the last record of its organism
        last = max(i for i, r in enumerate(records) if r.organism.taxid == record.organism.taxid)
        records.insert(last + 1, record)
    return records


# ---------------------------------------------------------------------------------------------
# Files


def _dmp(rows: Iterable[Iterable[object]]) -> bytes:
    """NCBI's .dmp layout: fields joined by ``\\t|\\t``, each line ending in ``\\t|``."""
    return "".join("\t|\t".join(str(f) for f in row) + "\t|\n" for row in rows).encode()


def taxdump_files() -> dict[str, bytes]:
    """nodes.dmp, names.dmp, merged.dmp and delnodes.dmp of the sample's taxa."""
    nodes = []
    names = []
    for taxid, parent, rank, name, division, code, mito, _ in TAXA:
        inherited = int(taxid != 1)
        # tax_id, parent, rank, embl code, division, inherited div, genetic code, inherited GC,
        # mito code, inherited MGC, GenBank hidden, hidden subtree root, comments
        nodes.append(
            (
                taxid,
                parent,
                rank,
                "",
                division,
                inherited,
                code,
                inherited,
                mito,
                inherited,
                0,
                0,
                "",
            )
        )
        names.append((taxid, name, "", "scientific name"))
    return {
        "taxdump/nodes.dmp": _dmp(nodes),
        "taxdump/names.dmp": _dmp(names),
        "taxdump/merged.dmp": _dmp(MERGED),
        "taxdump/delnodes.dmp": _dmp((t,) for t in DELETED),
    }


def _accession_map(releases: Iterable[list[SampleRecord]]) -> bytes:
    rows = {}
    for records in releases:
        for r in records:
            rows[r.accession] = f"{r.accession}\t{r.accession}.{r.version}\t{r.taxid}\t0\n"
    return (
        "accession\taccession.version\ttaxid\tgi\n" + "".join(rows[a] for a in sorted(rows))
    ).encode()


def _readme(
    first: list[SampleRecord], second: list[SampleRecord], files: dict[str, bytes]
) -> bytes:
    def sizes(name: str) -> str:
        return f"{len(files[name]):,} bytes"

    def summary(records: list[SampleRecord]) -> str:
        unique = len({r.sequence.upper() for r in records})
        return f"{len(records)} records, {unique} distinct sequences, {len({r.taxid for r in records})} taxa"

    text = f"""# Sample database

Generated by `python -m talaria_storage.sequences.sample examples/sample` (seed {SEED});
`tests/test_sample.py` checks that these files are exactly what the generator writes.
The sequences and accessions are synthetic (simulated protein families evolved down
a small real NCBI taxonomy); only gene, protein and taxon names are real. Do not read
anything into compression ratios measured on them: real figures are in
`benchmarks/README.md`. See the generator's docstring for what each file exercises.

| file | what |
|---|---|
| `release1.fasta` | {summary(first)}; {sizes("release1.fasta")} |
| `release2.fasta` | the next release: {summary(second)}; {sizes("release2.fasta")} |
| `taxdump/` | NCBI taxdump ({len(TAXA)} nodes, {len(MERGED)} merged ids, {len(DELETED)} deleted id) |
| `accession2taxid.tsv` | accession -> taxid of both releases' accessions as of release 2, NCBI `accession2taxid` layout |

`make demo` imports both releases into `./demo-store` and shows export, look-ups and diff.
"""
    return text.encode()


def generate(seed: int = SEED) -> dict[str, bytes]:
    """Every file of the sample, by path relative to the output folder."""
    first = _release1(seed)
    second = _release2(seed, first)
    files = {
        "release1.fasta": "".join(r.fasta() for r in first).encode(),
        "release2.fasta": "".join(r.fasta() for r in second).encode(),
        "accession2taxid.tsv": _accession_map((first, second)),
        **taxdump_files(),
    }
    files["README.md"] = _readme(first, second, files)
    return files


def write_sample(outdir: str | Path, seed: int = SEED) -> list[Path]:
    """Write the sample into ``outdir`` (created if needed); return the paths written."""
    root = Path(outdir)
    written = []
    for name, data in sorted(generate(seed).items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m talaria_storage.sequences.sample",
        description="Write the sample sequence database (FASTA releases, taxdump, accession map).",
    )
    parser.add_argument("outdir", type=Path, help="folder to write into (created if needed)")
    args = parser.parse_args(argv)
    for path in write_sample(args.outdir):
        print(f"{path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
