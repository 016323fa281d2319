"""The two .idx layouts: fairseq's (written, byte for byte) and Megatron-LM's (older nmt-preln).

The fixture data-bin under tests/fixtures/fairseq was written by fairseq-preprocess 0.12.2
(its README gives the command); the slow test hands our files to fairseq's own reader. Also: what
load_manifest says of a directory of such files without a manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.indexed_dataset import IndexedDataset, IndexedDatasetBuilder
from nmt_preln.errors import UserError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fairseq" / "data-bin"
FAIRSEQ_PYTHON = Path("/opt/peers/fairseq/bin/python")
PREFIXES = [
    f"{split}.de-en.{lang}" for split in ("train", "valid", "test") for lang in ("de", "en")
]


def _megatron_idx(sizes: list[int], *, itemsize: int, code: int, doc_idx: list[int]) -> bytes:
    """An .idx as nmt-preln wrote it before: a document count after N, documents at the end."""
    pointers = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64) * itemsize
    header = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, code, len(sizes), len(doc_idx))
    return (
        header
        + np.asarray(sizes, np.int32).tobytes()
        + pointers.tobytes()
        + np.asarray(doc_idx, np.int64).tobytes()
    )


@pytest.mark.parametrize("prefix", PREFIXES)
def test_written_bytes_equal_fairseqs(tmp_path: Path, prefix: str) -> None:
    theirs = IndexedDataset(str(FIXTURES / prefix))
    vocab = len(Dictionary.load(str(FIXTURES / f"dict.{prefix[-2:]}.txt")))
    with IndexedDatasetBuilder(str(tmp_path / prefix), vocab_size=vocab) as builder:
        for i in range(len(theirs)):  # one sequence at a time, as binarizing streams them
            builder.add_items(theirs[i], np.array([len(theirs[i])]))
        builder.finalize()
    for ext in ("bin", "idx"):
        assert (tmp_path / f"{prefix}.{ext}").read_bytes() == (
            FIXTURES / f"{prefix}.{ext}"
        ).read_bytes()


@pytest.mark.parametrize("doc_idx", [[0], [0, 2, 3]])
def test_megatron_layout_of_older_data_dirs_still_loads(tmp_path: Path, doc_idx: list[int]) -> None:
    seqs = [[5, 6, 7], [], [9, 2], [4]]
    (tmp_path / "d.bin").write_bytes(np.array([t for s in seqs for t in s], "<u2").tobytes())
    sizes = [len(s) for s in seqs]
    (tmp_path / "d.idx").write_bytes(_megatron_idx(sizes, itemsize=2, code=8, doc_idx=doc_idx))
    data = IndexedDataset(str(tmp_path / "d"))
    assert [data[i].tolist() for i in range(len(data))] == seqs
    assert data.sizes.tolist() == sizes


def test_a_size_that_fits_neither_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.bin").write_bytes(np.array([1, 2, 3], "<u2").tobytes())
    idx = _megatron_idx([3], itemsize=2, code=8, doc_idx=[0])
    (tmp_path / "d.idx").write_bytes(idx + b"\x00" * 4)
    with pytest.raises(UserError, match=r"d\.idx: 58 bytes, but 1 sequences need 38 .*Megatron"):
        IndexedDataset(str(tmp_path / "d"))


def test_fairseqs_lazy_format_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "d.bin").write_bytes(b"")
    (tmp_path / "d.idx").write_bytes(b"TNTIDX\x00\x00" + struct.pack("<QQ", 1, 4) + bytes(40))
    with pytest.raises(UserError, match=r"d\.idx: fairseq's lazy/cached .*--dataset-impl mmap"):
        IndexedDataset(str(tmp_path / "d"))


@pytest.mark.slow
@pytest.mark.skipif(not FAIRSEQ_PYTHON.exists(), reason="needs fairseq 0.12.2 in /opt/peers")
def test_fairseqs_reader_reads_our_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 70000, size=rng.integers(0, 30)).tolist() for _ in range(200)]
    for name, vocab in (("small", 1000), ("large", 70000)):  # uint16 and uint32
        with IndexedDatasetBuilder(str(tmp_path / name), vocab_size=vocab) as builder:
            for seq in seqs:
                builder.add_items(np.array(seq, dtype=np.int64) % vocab, np.array([len(seq)]))
            builder.finalize()
    script = (
        "import json, sys\n"
        "from fairseq.data.indexed_dataset import MMapIndexedDataset\n"
        "out = {}\n"
        "for name in ('small', 'large'):\n"
        "    d = MMapIndexedDataset(sys.argv[1] + '/' + name)\n"
        "    out[name] = [d[i].tolist() for i in range(len(d))]\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(FAIRSEQ_PYTHON), "-c", script, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    read = json.loads(proc.stdout.strip().splitlines()[-1])
    assert read["small"] == [[t % 1000 for t in s] for s in seqs]
    assert read["large"] == seqs


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (None, r"no manifest\.json: it looks like a fairseq data-bin; adopt it with `nmt-import"),
        ("spm.model", r"no manifest\.json: not a finished nmt-preprocess data directory"),
        (".partial-x1", r"no manifest\.json: not a finished nmt-preprocess data directory"),
    ],
)
def test_a_directory_without_manifest_says_what_it_looks_like(
    tmp_path: Path, extra: str | None, message: str
) -> None:
    """A fairseq data-bin gets the adoption command; a half-written nmt-preprocess output
    (SentencePiece model or staging directory present) does not."""
    from nmt_preln.data.dataset import load_manifest

    data = Path(shutil.copytree(FIXTURES, tmp_path / "bin"))
    if extra == "spm.model":
        (data / extra).write_bytes(b"")
    elif extra:
        (data / extra).mkdir()
    with pytest.raises(UserError, match=message):
        load_manifest(str(data))
