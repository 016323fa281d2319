"""MMapIndexedDataset files: exact fairseq layout, dtype choice, round trips, corruption."""

from __future__ import annotations

import pickle
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nmt_preln.data import indexed_dataset
from nmt_preln.data.indexed_dataset import (
    IndexedDataset,
    IndexedDatasetBuilder,
    best_fitting_dtype,
)
from nmt_preln.errors import UserError


def _sequences(n: int, *, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=rng.integers(0, 12)) for _ in range(n)]


def _write(prefix: str, seqs: list[np.ndarray], *, vocab: int) -> None:
    """One ``add_items`` call per sequence (the builder's streaming use)."""
    builder = IndexedDatasetBuilder(prefix, vocab_size=vocab)
    for seq in seqs:
        builder.add_items(seq, np.array([seq.size]))
    builder.finalize()


def _exists(prefix: str) -> bool:
    return Path(prefix + ".idx").is_file() and Path(prefix + ".bin").is_file()


def test_round_trip(tmp_path: Path) -> None:
    prefix = str(tmp_path / "d")
    seqs = _sequences(50, vocab=1000)
    _write(prefix, seqs, vocab=1000)
    data = IndexedDataset(prefix)
    assert _exists(prefix) and len(data) == 50
    assert data.sizes.tolist() == [len(s) for s in seqs]
    for i, seq in enumerate(seqs):
        assert data[i].dtype == np.int64
        assert data[i].tolist() == seq.tolist()
    assert data[-1].tolist() == seqs[-1].tolist()
    with pytest.raises(IndexError):
        data[50]


def test_exact_fairseq_header_and_layout(tmp_path: Path) -> None:
    prefix = str(tmp_path / "d")
    seqs = [np.array([5, 6, 7]), np.array([], dtype=np.int64), np.array([9, 2])]
    _write(prefix, seqs, vocab=1000)
    idx = (tmp_path / "d.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<Q", idx[9:17]) == (1,)  # version
    assert idx[17] == 8  # fairseq's code for uint16
    assert struct.unpack("<Q", idx[18:26]) == (3,)  # sequences, then no document count
    assert np.frombuffer(idx, np.int32, 3, 26).tolist() == [3, 0, 2]
    assert np.frombuffer(idx, np.int64, 3, 38).tolist() == [0, 6, 6]  # byte offsets
    assert len(idx) == 62  # 26 + 3 * 4 + 3 * 8: nothing after the pointers
    assert (tmp_path / "d.bin").read_bytes() == np.array([5, 6, 7, 9, 2], "<u2").tobytes()


@pytest.mark.parametrize(
    ("vocab", "dtype", "code"),
    [(8, np.uint16, 8), (65499, np.uint16, 8), (65500, np.uint32, 9), (2**32, np.int64, 5)],
)
def test_dtype_is_fairseqs_best_fit(tmp_path: Path, vocab: int, dtype: type, code: int) -> None:
    assert best_fitting_dtype(vocab) is dtype
    prefix = str(tmp_path / "d")
    _write(prefix, [np.array([0, vocab - 1])], vocab=vocab)
    assert (tmp_path / "d.idx").read_bytes()[17] == code
    assert IndexedDataset(prefix)[0].tolist() == [0, vocab - 1]


def test_one_add_items_call_writes_the_same_bytes_as_one_per_sequence(tmp_path: Path) -> None:
    seqs = _sequences(40, vocab=300, seed=3)
    _write(str(tmp_path / "one"), seqs, vocab=300)
    with IndexedDatasetBuilder(str(tmp_path / "many"), vocab_size=300) as builder:
        builder.add_items(np.concatenate(seqs), np.array([len(s) for s in seqs]))
        builder.finalize()
    for ext in ("bin", "idx"):
        assert (tmp_path / f"one.{ext}").read_bytes() == (tmp_path / f"many.{ext}").read_bytes()


def test_builder_rejects_out_of_vocab_and_bad_sizes(tmp_path: Path) -> None:
    with IndexedDatasetBuilder(str(tmp_path / "d"), vocab_size=10) as builder:
        with pytest.raises(ValueError, match="outside"):
            builder.add_items(np.array([10]), np.array([1]))
        with pytest.raises(ValueError, match="sum"):
            builder.add_items(np.array([1, 2]), np.array([3]))


def test_empty_dataset_and_pickle(tmp_path: Path) -> None:
    prefix = str(tmp_path / "empty")
    _write(prefix, [], vocab=16)
    assert len(IndexedDataset(prefix)) == 0
    _write(str(tmp_path / "d"), [np.array([1, 2])], vocab=16)
    clone = pickle.loads(pickle.dumps(IndexedDataset(str(tmp_path / "d"))))
    assert clone[0].tolist() == [1, 2]


def _corrupt(tmp_path: Path, ext: str, edit: object) -> str:
    prefix = str(tmp_path / "d")
    _write(prefix, _sequences(20, vocab=100), vocab=100)
    path = tmp_path / f"d.{ext}"
    path.write_bytes(edit(bytearray(path.read_bytes())))  # type: ignore[operator]
    return prefix


def _set(data: bytearray, offset: int, value: bytes) -> bytearray:
    data[offset : offset + len(value)] = value
    return data


@pytest.mark.parametrize(
    ("ext", "edit", "message"),
    [
        ("idx", lambda b: _set(b, 0, b"XXXX"), "d.idx: not an MMapIndexedDataset"),
        ("idx", lambda b: _set(b, 9, struct.pack("<Q", 2)), "d.idx: unsupported index version 2"),
        ("idx", lambda b: _set(b, 17, b"\x63"), "d.idx: unknown dtype code 99"),
        ("idx", lambda b: b[:-8], r"d.idx: \d+ bytes, but 20 sequences need"),
        ("idx", lambda b: b[:20], "d.idx: truncated index"),
        ("idx", lambda b: _set(b, 26 + 80 + 8 * 5, struct.pack("<q", 3)), "d.idx: corrupt"),
        ("bin", lambda b: b[:-2], "d.bin: .* bytes, but .*d.idx describes"),
        ("bin", lambda b: b + b"\x00\x00", "d.bin: .* bytes, but .*d.idx describes"),
    ],
)
def test_corrupt_files_fail_with_one_line(
    tmp_path: Path, ext: str, edit: object, message: str
) -> None:
    prefix = _corrupt(tmp_path, ext, edit)
    with pytest.raises(UserError, match=message) as info:
        IndexedDataset(prefix)
    assert "\n" not in str(info.value)


def test_missing_files(tmp_path: Path) -> None:
    _write(str(tmp_path / "d"), [np.array([1])], vocab=16)
    (tmp_path / "d.bin").unlink()
    assert not _exists(str(tmp_path / "d"))
    with pytest.raises(UserError, match=r"d\.bin: binarized data file not found"):
        IndexedDataset(str(tmp_path / "d"))


def test_reading_never_maps_the_bin(tmp_path: Path) -> None:
    """Sentences are read with pread, not through a map of the .bin: random access over a map
    makes the pages around every sentence read resident, up to the whole corpus (issue 6)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    prefix = str(tmp_path / "d")
    seqs = _sequences(300, vocab=500, seed=4)
    _write(prefix, seqs, vocab=500)
    data = IndexedDataset(prefix)
    with ThreadPoolExecutor(max_workers=3) as pool:
        read = list(pool.map(lambda i: data[i].tolist(), range(300)))
    assert read == [s.tolist() for s in seqs]
    flat = np.concatenate(seqs)
    assert data.index_range() == (int(flat.min()), int(flat.max()))
    assert prefix + ".bin" not in maps.read_text()


def test_whole_file_checks_read_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexed_dataset, "_CHECK_BLOCK", 7)
    prefix = str(tmp_path / "d")
    seqs = [np.array([3 + i % 50] * (1 + i % 4)) for i in range(40)]
    seqs[33] = np.array([1, 90])
    _write(prefix, seqs, vocab=100)
    data = IndexedDataset(prefix)
    assert data.index_range() == (1, 90)
    assert [data[i].tolist() for i in range(40)] == [s.tolist() for s in seqs]
    idx = bytearray((tmp_path / "d.idx").read_bytes())
    _set(idx, 26 + 4 * 40 + 8 * 30, struct.pack("<q", 2))  # pointer 30: in the fifth block
    (tmp_path / "d.idx").write_bytes(idx)
    with pytest.raises(UserError, match=r"d\.idx: corrupt"):
        IndexedDataset(prefix)
