"""The registry of known corpora, and the one generic loader behind every ``CORPUS:SPLIT`` reference.

Each entry knows its folder (under the data directory: the config's ``data.dir`` or the
``KAYAN_DATA_DIR`` environment variable), its files per split, their sha256 (checked on every read),
its scheme, its typo table and its license. Everything is converted to IOB2 on read, with every
repair counted. A corpus that ships no dev split gets one carved deterministically from train
(:func:`kayan.data.dataset.carve`), so test data never serves model selection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

from kayan.data import hfdata
from kayan.data.conll import ReadReport, read_conll
from kayan.data.dataset import DEFAULT_DEV_FRACTION, CorpusSplit, carve
from kayan.data.schemes import count_repairs, iob_prefixes, to_iob2
from kayan.data.sentence import Sentence
from kayan.errors import KayanError
from kayan.files import sha256_of

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"  # package data: a wheel install has it too


@dataclass(frozen=True)
class Corpus:
    """One registry entry. ``folder`` is relative to the data directory unless absolute."""

    name: str
    folder: str
    splits: Mapping[str, tuple[str, ...]]
    sha256: Mapping[str, str]
    description: str
    license: str
    scheme: str = "IOB2"
    tag_fixes: Mapping[str, str] = field(default_factory=dict)
    drop_tokens: tuple[str, ...] = ()
    tag_column: str = "outer"
    dev_split: str = "dev"
    label_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # named maps of its types (data.label_maps)


# AQMAR's label typos as released (see its SOURCE.md), mapped by this explicit table.
# B-MIS/I-MIS (no class digit) go to the most frequent miscellaneous class, MIS1; the
# language markers B-SPANISH/B-ENGLISH tag Latin-script words, not entities, so they become O.
AQMAR_TAG_FIXES = {
    "OO": "O", "IO": "O", "I--ORG": "I-ORG", "B-SPANISH": "O", "B-ENGLISH": "O",
    "B-MIS1`": "B-MIS1", "B-MISS1": "B-MIS1", "B-MIS": "B-MIS1", "I-MIS": "I-MIS1",
    "B-MIS-1": "B-MIS1", "B-MIS-2": "B-MIS2",
}

# NewsFANE/WikiFANE's 50 fine types in ANERcorp's four. Each measured type takes the ANERcorp type its entities
# most often have where NewsFANE repeats ANERcorp train text (2,506 sentences of the same letters, the dev block
# left out; e.g. Nation: LOC 1,131 of 1,159; Government: O 102 of 116, ANERcorp leaves "the government" untagged).
# A tie (Water, Projectile: one MISC, one O) goes to MISC. The types never met there follow the ACE
# taxonomy FANE extends (*: by analogy, not measured).
FANE_TO_ANERCORP = {
    **dict.fromkeys(["Nation", "Population-Center", "State-or-Province", "GPE-Cluster", "Continent", "Water-Body",
                     "County-or-District", "Celestial*"], "LOC"),
    **dict.fromkeys(["Politician", "Athlete", "Other_PER", "Artist", "Religious_PER", "Scientist", "Businessperson",
                     "Police", "Lawyer", "Engineer"], "PERS"),
    **dict.fromkeys(["Non-Governmental", "Sports", "Media", "Commercial", "Educational", "Entertainment",
                     "Religious_ORG*"], "ORG"),
    **dict.fromkeys(["Book", "Movie", "Hardware", "Food", "Drug", "Shooting", "Water", "Projectile", "Sound*",
                     "Blunt*", "Nuclear*", "Exploding*", "Sharp*", "Chemical*"], "MISC"),
    **dict.fromkeys(["Group", "Government", "Building-Grounds", "Medical-Science", "Land", "Land-Region-Natural",
                     "Path", "Software", "Airport", "Air", "Subarea-Facility", "Plant"], "O"),
}
FANE_TO_ANERCORP = {kind.rstrip("*"): target for kind, target in FANE_TO_ANERCORP.items()}

# AQMAR's miscellaneous classes are per article (MIS0-3): ANERcorp's MISC. WikiANN tags PER/LOC/ORG only.
AQMAR_TO_ANERCORP = {"PER": "PERS", "MIS0": "MISC", "MIS1": "MISC", "MIS2": "MISC", "MIS3": "MISC"}
WIKIANN_TO_ANERCORP = {"PER": "PERS"}

SAMPLE_SHA256 = {  # update with kayan/data/sample/README.md when the sample changes
    "train.txt": "c327e2273ce7551c8d83637401ae90104bf6e16492285a629e7c72126d104615",
    "dev.txt": "0969fed47e63776bd4fb53ffe3bf1a0c0002efd07df40bf28c6b2cbe10cc51a4",
    "test.txt": "418a2205c62277ee567189a4379282be92fd9346f840bcc09d60ca327daac790",
}

AQMAR_SHA256 = {
    "Atom.txt": "f6c2aa13bb55177f9eada502102b2d19fb493210bc8757ff34b38f66520705ab",
    "Christiano_Ronaldo.txt": "189355da6ea5aee9917fde22e4fee8a8e8eda874096fcb25e31ac2ebc0d3316c",
    "Computer.txt": "1f4010d40e99eb92c11f5a6baff33e3f72411253c31c6c3fb7864526f1a67f07",
    "Computer_Software.txt": "9bb4e1420396568515f6a4f72dd0394416acbc114b7b107f1ad03a64b6ffeb18",
    "Crusades.txt": "5ccefacdb560783223c1d2c9040ee847c2f152ef107b3f65d99d7914570100d9",
    "Damascus.txt": "ceca4da7ae6ac4dd96eabd14bff1f2e69200ccacf76c47a81448cdcec9c8ee65",
    "Enrico_Fermi.txt": "e22429380d78ae2a6c46ba7f927a0a42fad1249634785cd0307a52b942f28c38",
    "Football.txt": "cdd8e84cdc6e5b263418c68b731c25e01a07aaeaa018c95d16c9c1078909535e",
    "Ibn_Tolun_Mosque.txt": "44af109c554bf5085f7698a87d459eeecac3980974eb7e97dcc540588d580973",
    "Imam_Hussein_Shrine.txt": "696b8adb27f87010687858d3e0df46515770d5a13aab0104a2a6ac0753a115b4",
    "Internet.txt": "b4b6229848b7c99348df13005d38d4456f702268935b1eb5ae43495174550e25",
    "Islamic_Golden_Age.txt": "9fa7c5db7e435433556c8d6287a68d44a1b77d96f4e3811792bdd475a3eaf17e",
    "Islamic_History.txt": "dc4a1605802b472855feccff9e048d81674d953e4ca1bdeb06e4a88abc159528",
    "Light.txt": "85461769826ec4f9152b7a3b05da151b627a3974eb1502e45782253aba27803d",
    "Linux.txt": "6345bbd09bd04bb35f666e87cc33fd7b4e517056a6c43daa71810f9b33ac37c5",
    "Nuclear_Power.txt": "bb6de33082174d258b1ecbeba58541a5e09de2f3d143b44cfc6f0ce74326469e",
    "Periodic_Table.txt": "45ce1419d04d87567656e80a4d9c4349449f72ba0e8972545287fc5cffbdfd07",
    "Physics.txt": "4111596063a364b0d267afad00f66cedb2ee5b66a9606b7c3e2f92951a73e555",
    "Portugal_football_team.txt": "791e39e63eeb21e86b1acedb2b8db616593db9a2f9998eab205553ac3298feb5",
    "Raul_Gonzales.txt": "00f2bfa6647e9a61c0f354468117e8560fd46c02847b888e2e2499ab8da9874e",
    "Razi.txt": "8c20434643c1223825d3713fb02bdfe2d1913cc3a4c4b9e90120b5a7fb9118b3",
    "Real_Madrid.txt": "2268574b7e5f04cd5a110bd51e6b8b8ddb7a786c8cad2acb4bb67cd241ac40e5",
    "Richard_Stallman.txt": "f6450a922501504101141c56fd889ae9dcf3431382551e3da198326cb5d36c39",
    "Soccer_Worldcup.txt": "16779921163a4dd95a9b3c4609382f2235a69e40db868cc3dfde3c22287e7148",
    "Solaris.txt": "5fbf29104679b8bf06ce23af85af447b33699988edf650c68733a4cf70425f3c",
    "Summer_Olympics2004.txt": "39ca8b87dfde97c282fcd9daf34c9b1fd7a0af897851cc8031908417a720b361",
    "Ummaya_Mosque.txt": "c523ed5eb9ba1227803c72464275c20c74c42dceceb97098d9deb024d0bdda98",
    "X_window_system.txt": "bd2e08e8fae0441c4c793324847ddcf7d582cdf33c42f44bef06d421443aeaf0",
}


def _fane(name: str, file: str, digest: str, description: str) -> Corpus:
    """One of the two FANE gold corpora: one file in WikiFANE_2014_Gold_standard/, the 50 fine types."""
    return Corpus(name=name, folder="WikiFANE_2014_Gold_standard", splits={"train": (file,)}, sha256={file: digest},
                  description=description, license="CC BY-SA 3.0", label_maps={"anercorp": FANE_TO_ANERCORP})


REGISTRY: Mapping[str, Corpus] = MappingProxyType({c.name: c for c in [
    Corpus(
        name="sample", folder=str(SAMPLE_DIR),
        splits={"train": ("train.txt",), "dev": ("dev.txt",), "test": ("test.txt",)},
        sha256=SAMPLE_SHA256,
        description="Kayan's own sample of MSA news-style text, PERS/LOC/ORG/MISC (kayan/data/sample/README.md)",
        license="CC BY 4.0",
    ),
    Corpus(
        name="anercorp", folder="ANERcorp-CamelLabSplits",
        splits={"train": ("ANERCorp_CamelLab_train.reconstructed.txt",), "test": ("ANERCorp_CamelLab_test.txt",)},
        sha256={
            "ANERCorp_CamelLab_train.reconstructed.txt": "393969ce6f24f1acca1b3321b401e0b4fae135610c606dbeb4bf141d7dfde053",
            "ANERCorp_CamelLab_test.txt": "0eac2e38f4e8e3059cb58b9691b92d7720499a595b10919326b6a512d297ffe9",
        },
        description="ANERcorp, CAMeL Lab split (news; PERS/LOC/ORG/MISC)",
        license="CC BY-SA 4.0",
    ),
    _fane("newsfane", "NewsFANE_Gold_2014_170K.txt", "448b4e7695ce6129c2c5cdd7d460f9eb43319e651f875b1ffbdbe40f8c70480b",
          "NewsFANE gold 2014 (news; 50 fine-grained types; overlaps ANERcorp text)"),
    _fane("wikifane", "WikiFANE_Gold_2014_500K.txt", "18511ba3045ee44e1018e53bfe8963d193454817a0dabc6790021ee932cabb59",
          "WikiFANE gold 2014 (Arabic Wikipedia; 50 fine-grained types)"),
    Corpus(
        name="aqmar", folder="AQMAR",
        splits={"train": tuple(sorted(AQMAR_SHA256))},
        sha256=AQMAR_SHA256,
        description="AQMAR Arabic Wikipedia, 28 articles (PER/LOC/ORG/MIS0-3)",
        license="CC BY-SA 3.0",
        tag_fixes=AQMAR_TAG_FIXES,
        label_maps={"anercorp": AQMAR_TO_ANERCORP},
    ),
    Corpus(
        name="wikiann-ar", folder="WikiANN-ar",
        splits={"train": ("train-ar.tsv",), "dev": ("dev-ar.tsv",)},
        sha256={
            "train-ar.tsv": "391c916d60975b9e6cbd5863af5940626f8d63c2337935ee94a36f3f9b95367e",
            "dev-ar.tsv": "20426640430d3732540f38c018bef98ab971286bedf0969f60305dd3f725ccdc",
        },
        description="WikiANN / PAN-X Arabic (silver, Wikipedia; PER/LOC/ORG)",
        license="not stated (Wikipedia text, CC BY-SA)",
        label_maps={"anercorp": WIKIANN_TO_ANERCORP},
    ),
    Corpus(
        name="wojood-sample", folder="Wojood-sample",
        splits={"train": ("train.txt",), "val": ("val.txt",), "test": ("test.txt",)},
        sha256={
            "train.txt": "807128c8387d82175e916262a1258801ff78b7439e37defc5bbbb62144a864de",
            "val.txt": "714973e99d6ab5855b583387e8b3974d89b35038990192231610e625582a39fa",
            "test.txt": "28b02687c1619df1edacbbd4f9fdc43dddfa01f4221b633300fe47459f900a42",
        },
        description="Wojood public sample (nested, 21 types; flattened to the outermost layer)",
        license="MIT (code repository); data terms not stated",
        dev_split="val",
        drop_tokens=("$#$",),
    ),
]})


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding the registry's corpora: ``explicit``, else ``$KAYAN_DATA_DIR``."""
    chosen = explicit or os.environ.get("KAYAN_DATA_DIR")
    if not chosen:
        raise KayanError("no data directory: set KAYAN_DATA_DIR (e.g. ../shared/data) or data.dir in the config")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise KayanError(f"data directory {path} does not exist; fix KAYAN_DATA_DIR or data.dir in the config")
    return path


def _check_path_ref(ref: str, name: str) -> None:
    """A reference that names no corpus but looks like a path: say the file is missing, not that the corpus is unknown."""
    path = Path(ref).expanduser()
    if path.is_dir():
        raise KayanError(f"{ref}: is a folder, not a CoNLL file; give the file's path (or CORPUS:SPLIT)")
    suffix = Path(name).suffix.lower()
    if "/" in ref or os.sep in ref or ref.startswith((".", "~")) or suffix in (".txt", ".conll", ".tsv", ".bio", ".iob", ".iob2"):
        raise KayanError(f"{ref}: no such file; check the path (a CoNLL file), or name a corpus: {', '.join(REGISTRY)}")


def get(name: str) -> Corpus:
    """The registry entry called ``name``."""
    if name not in REGISTRY:
        raise KayanError(f"unknown corpus {name!r}; known: {', '.join(REGISTRY)} — or give the path of a CoNLL file")
    return REGISTRY[name]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``"anercorp:test"`` into ``("anercorp", "test")``; a bare name gives ``(name, None)``.

    >>> parse_ref("anercorp:test"), parse_ref("sample")
    (('anercorp', 'test'), ('sample', None))
    """
    name, _, split = ref.partition(":")
    return name, split or None


def split_refs(ref: str) -> list[str]:
    """The references ``ref`` stands for: every split of a registry corpus named without one, else ``ref`` itself.

    >>> split_refs("sample"), split_refs("anercorp:test"), split_refs("path/to/file.txt")
    (['sample:train', 'sample:dev', 'sample:test'], ['anercorp:test'], ['path/to/file.txt'])
    """
    name, split = parse_ref(ref)
    if split is None and name in REGISTRY:
        return [f"{name}:{each}" for each in REGISTRY[name].splits]
    return [ref]


def _declared_tag_column(column: str | None, ref: str) -> str | int:
    """``data.columns.tags`` for a CoNLL file: its 1-based column number (the token is column 1), as
    :func:`kayan.data.conll.read_conll` counts tag columns (from 0, after the token); else ``auto``.

    >>> _declared_tag_column("3", "f.txt"), _declared_tag_column(None, "f.txt")
    (1, 'auto')
    """
    if column is None or not str(column).isdigit():  # a 🤗 dataset's column name: not this file's business
        return "auto"
    if int(column) < 2:
        raise KayanError(f"{ref}: data.columns.tags is {column!r}; for a CoNLL file give the tag column's number "
                         "(2 or more: the token is column 1)")
    return int(column) - 2


def _read_files(paths: Sequence[Path], corpus: Corpus | None, verify: bool, tag_column: str | int = "auto") -> CorpusSplit:
    """Read and verify the files of one split and convert them to IOB2.

    A registry corpus declares its scheme and tag column; a file named by its path has them found
    (``tag_column`` when the config names it, :func:`kayan.conll.read_conll`'s ``auto`` otherwise).
    """
    scheme = corpus.scheme if corpus else "auto"
    report, sentences, raw_tags, files = ReadReport(), [], [], {}
    for path in paths:
        digest = sha256_of(path)
        expected = corpus.sha256.get(path.name) if corpus else None
        if verify and expected and digest != expected:
            raise KayanError(
                f"{path}: sha256 differs from the registry entry of corpus {corpus.name!r} "
                f"(expected {expected}, found {digest}); restore the original file, or pass --no-verify "
                "(data.verify: false) to use it anyway"
            )
        files[str(path)] = digest
        read, file_report = read_conll(
            path, scheme=scheme,
            tag_fixes=corpus.tag_fixes if corpus else None,
            drop_tokens=corpus.drop_tokens if corpus else (),
            tag_column=corpus.tag_column if corpus else tag_column,
        )
        for sentence in read:
            tags, _ = to_iob2(sentence.tags, file_report.scheme)
            file_report.repairs.update(count_repairs(iob_prefixes(sentence.tags, file_report.scheme), tags))
            raw_tags.append(sentence.tags)
            sentences.append(Sentence(sentence.words, tuple(tags), sentence.source, sentence.line))
        report.merge(file_report)
    return CorpusSplit("", sentences, raw_tags, report, report.scheme or scheme, files)


def load_split(
    ref: str,
    *,
    root: str | os.PathLike | None = None,
    verify: bool = True,
    dev_fraction: float = DEFAULT_DEV_FRACTION,
    hold_out_dev: bool = False,
    columns: Mapping[str, str] | None = None,
    dev_split: str = "end",
) -> CorpusSplit:
    """Load ``CORPUS:SPLIT`` (or a CoNLL file path, or a dataset reference) as IOB2 sentences.

    Args:
        ref: ``anercorp:train``, ``sample:dev``, a bare name (its train split), a file path, or a
            🤗 dataset: ``hf:OWNER/NAME[:CONFIG]:SPLIT``, ``parquet:PATH``, ``json:PATH``, a
            ``save_to_disk`` folder (see :mod:`kayan.data.hfdata`).
        root: the data directory (else ``$KAYAN_DATA_DIR``); the ``sample`` corpus needs none.
        verify: check each file's sha256 against the registry.
        dev_fraction: size of the dev block carved from train where a corpus ships no dev.
        hold_out_dev: for ``train`` of a corpus without dev, leave out the carved dev block
            (what training wants); statistics read the whole file.
        columns: a dataset's token and tag column names (``data.columns``), when not the usual ones.
        dev_split: how the dev split is carved: ``end`` or ``spread`` (:func:`kayan.data.dataset.dev_indices`).
    """
    if hfdata.is_dataset_ref(ref):
        return hfdata.load_split(ref, columns=columns, dev_fraction=dev_fraction, hold_out_dev=hold_out_dev,
                           dev_split=dev_split)
    name, split = parse_ref(ref)
    if name not in REGISTRY and Path(ref).is_file():  # a path that itself contains ':'
        name, split = ref, None
    if name not in REGISTRY and Path(name).is_file():
        if split not in (None, "train", "dev"):
            raise KayanError(f"{ref}: a file has the splits train (all of it) and dev (carved from its end), not {split!r}")
        dataset = _read_files([Path(name)], None, verify, _declared_tag_column((columns or {}).get("tags"), ref))
        dataset.name = ref
        return carve(dataset, split or "train", dev_fraction, hold_out_dev, dev_split)
    if name not in REGISTRY:
        _check_path_ref(ref, name)
    corpus = get(name)
    split = split or "train"
    if split == "dev" and "dev" not in corpus.splits and corpus.dev_split in corpus.splits:
        split = corpus.dev_split
    no_dev = "dev" not in corpus.splits and corpus.dev_split not in corpus.splits
    if split not in corpus.splits and not (split == "dev" and no_dev):
        choices = list(corpus.splits) + (["dev (carved from train)"] if no_dev else [])
        raise KayanError(f"corpus {name!r} has no split {split!r}; choose one of: {', '.join(choices)}")
    folder = Path(corpus.folder) if Path(corpus.folder).is_absolute() else data_dir(root) / corpus.folder
    source = "train" if split == "dev" and no_dev else split
    paths = [folder / f for f in corpus.splits[source]]
    for path in paths:
        if not path.is_file():
            raise KayanError(
                f"corpus {name!r}: split {source!r} file {path} is missing; point KAYAN_DATA_DIR (or data.dir) "
                f"at the folder that holds {corpus.folder}/"
            )
    dataset = _read_files(paths, corpus, verify)
    dataset.name = f"{name}:{split}"
    return carve(dataset, split, dev_fraction, hold_out_dev, dev_split) if no_dev else dataset
