"""Token sequences on disk in fairseq's ``MMapIndexedDataset`` format, read through ``np.memmap``.

A dataset is two files next to each other:

``PREFIX.bin``
    every sequence's tokens, concatenated, in one integer dtype.
``PREFIX.idx`` (all little-endian), fairseq 0.12's layout (the one written here)
    ``b"MMIDIDX\\x00\\x00"`` (9 bytes), u64 version (1), u8 dtype code, u64 sequence count N,
    then N int32 sizes (tokens per sequence) and N int64 pointers (byte offset of each sequence
    in the .bin): 26 + 12 N bytes.

Reading also accepts the Megatron-LM variant that nmt-preln wrote before (a u64 document count
D after N, and D int64 document indices at the end: 34 + 12 N + 8 D bytes), so older data
directories keep loading; the file size tells the two apart (they can never coincide). Files
written here are byte for byte what fairseq-preprocess writes, and load in fairseq.

Reading keeps the process's memory flat as the corpus grows: only the sizes are mapped (the
batching needs all of them); a sequence is read with two ``pread`` calls (its pointer, then its
tokens), and the whole-file checks at opening read in blocks. Random access through a map of
the .bin would instead make the pages around every sentence read part of the process's
resident set (file-backed, but counted in its RSS), up to the size of the corpus.
"""

from __future__ import annotations

import os
import struct
import weakref
from types import TracebackType
from typing import Any

import numpy as np

from nmt_preln.errors import UserError

HDR_MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
_HEADER = struct.Struct("<9sQBQ")  # magic, version, dtype code, sequence count (fairseq)
_DOC_COUNT = struct.Struct("<Q")  # the Megatron-LM variant's document count, after the header
# fairseq's older "lazy"/"cached" IndexedDataset (--dataset-impl lazy|cached) starts with this.
_LEGACY_MAGIC = b"TNTIDX\x00\x00"

# fairseq/data/indexed_dataset.py `_code_to_dtype` (6 was `np.float`, i.e. float64).
DTYPE_CODES: dict[int, type[np.generic]] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.double,
    8: np.uint16,
    9: np.uint32,
    10: np.uint64,
}
_CHECK_BLOCK = 1 << 20  # sequences (or tokens) per read when checking a whole file


def best_fitting_dtype(vocab_size: int) -> type[np.generic]:
    """fairseq 0.12's ``best_fitting_int_dtype``: uint16 below 65500 symbols, then uint32,
    int64 past 2**32 - 1."""
    if vocab_size < 65500:
        return np.uint16
    return np.uint32 if vocab_size < 4294967295 else np.int64


def dtype_code(dtype: type[np.generic]) -> int:
    """The header code of ``dtype`` (the first match, as fairseq's writer does)."""
    for code, candidate in DTYPE_CODES.items():
        if np.dtype(candidate) == np.dtype(dtype):
            return code
    raise ValueError(f"dtype {dtype} has no MMapIndexedDataset code")


class IndexedDatasetBuilder:
    """Write ``PREFIX.bin`` while sequences arrive, then ``PREFIX.idx`` in :meth:`finalize`.

    Args:
        prefix: output path without the ``.bin``/``.idx`` suffix.
        vocab_size: the dictionary size; picks the smallest fairseq dtype that holds every index.
    """

    def __init__(self, prefix: str, *, vocab_size: int) -> None:
        self.prefix = prefix
        self.vocab_size = vocab_size
        self.dtype = best_fitting_dtype(vocab_size)
        self._bin = open(prefix + ".bin", "wb")  # noqa: SIM115 (closed in finalize/__exit__)
        self._sizes: list[np.ndarray] = []

    def __enter__(self) -> IndexedDatasetBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bin.close()

    def add_items(self, tokens: np.ndarray, sizes: np.ndarray) -> None:
        """Append many sequences with one write.

        Args:
            tokens: (total_tokens,) the sequences' indices, concatenated.
            sizes: (num_sequences,) the length of each sequence; sums to ``total_tokens``.
        """
        sizes = np.asarray(sizes, dtype=np.int64)
        if int(sizes.sum()) != tokens.size or (sizes < 0).any():
            raise ValueError(f"sizes sum to {int(sizes.sum())}, tokens has {tokens.size}")
        if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"token index outside [0, {self.vocab_size}) in {self.prefix}")
        self._bin.write(np.ascontiguousarray(tokens, dtype=self.dtype).data)
        self._sizes.append(sizes.astype(np.int32))

    def finalize(self) -> None:
        """Close the .bin and write the .idx in fairseq's layout (header, sizes, pointers)."""
        self._bin.close()
        sizes = np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int32)
        itemsize = np.dtype(self.dtype).itemsize
        pointers = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1].astype(np.int64) * itemsize, out=pointers[1:])
        with open(self.prefix + ".idx", "wb") as f:
            f.write(_HEADER.pack(HDR_MAGIC, VERSION, dtype_code(self.dtype), len(sizes)))
            f.write(sizes.data)
            f.write(pointers.data)


class IndexedDataset:
    """Random access to the sequences of ``PREFIX.bin``/``PREFIX.idx`` without loading them.

    Opening checks the header (magic, version, dtype), that the .idx length matches its counts,
    and that the pointers tile the .bin exactly, so truncated or corrupt files fail here with a
    one-line UserError instead of returning garbage later.

    Attributes:
        sizes: (num_sequences,) int32 length of each sequence (a read-only view of the .idx).
        dtype: the integer dtype of the .bin.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        idx_path, bin_path = prefix + ".idx", prefix + ".bin"
        for path in (idx_path, bin_path):
            if not os.path.isfile(path):
                raise UserError(f"{path}: binarized data file not found")
        idx = _map(idx_path)
        code, n, sizes_at = _parse_index(idx, idx_path)
        self.dtype = DTYPE_CODES[code]
        self._itemsize = np.dtype(self.dtype).itemsize
        self.sizes = np.frombuffer(idx, dtype=np.int32, count=n, offset=sizes_at)
        self._pointers_at = sizes_at + 4 * n  # byte offset of the pointers in the .idx
        # Descriptors for os.pread (positional reads are safe from several threads), closed
        # when the dataset is garbage-collected.
        self._idx_fd, self._bin_fd = os.open(idx_path, os.O_RDONLY), os.open(bin_path, os.O_RDONLY)
        for fd in (self._idx_fd, self._bin_fd):
            weakref.finalize(self, os.close, fd)
        _check_layout(
            self.sizes,
            self._idx_fd,
            pointers_at=self._pointers_at,
            itemsize=self._itemsize,
            bin_bytes=os.fstat(self._bin_fd).st_size,
            where=prefix,
        )

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, index: int) -> np.ndarray:
        """Return sequence ``index`` as a fresh (seq_len,) int64 array."""
        n = len(self.sizes)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} sequences in {self.prefix}")
        index %= n
        nbytes = int(self.sizes[index]) * self._itemsize
        (ptr,) = struct.unpack("<q", os.pread(self._idx_fd, 8, self._pointers_at + 8 * index))
        raw = os.pread(self._bin_fd, nbytes, ptr) if nbytes else b""
        if len(raw) != nbytes:
            raise UserError(f"{self.prefix}.bin: truncated while reading sequence {index}")
        return np.frombuffer(raw, dtype=self.dtype).astype(np.int64)

    def index_range(self) -> tuple[int, int]:
        """(smallest, largest) token index in the .bin, (0, -1) when empty: read in blocks,
        so the pass leaves nothing resident."""
        low, high, offset = 0, -1, 0
        while True:
            block = _read(self._bin_fd, dtype=self.dtype, count=_CHECK_BLOCK, offset=offset)
            if not len(block):
                return low, high
            offset += block.nbytes
            if high < low:
                low, high = int(block.min()), int(block.max())
            else:
                low, high = min(low, int(block.min())), max(high, int(block.max()))

    def __getstate__(self) -> dict[str, Any]:
        return {"prefix": self.prefix}  # descriptors do not pickle; reopen in the new process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["prefix"])  # type: ignore[misc]


def _parse_index(idx: np.ndarray, idx_path: str) -> tuple[int, int, int]:
    """Check an .idx header and tell its layout from its size.

    Args:
        idx: the whole .idx file as bytes (mapped).
        idx_path: for the error lines.

    Returns:
        ``(dtype code, sequence count N, byte offset of the sizes)``: 26 for fairseq's layout
        (26 + 12 N bytes), 34 for the Megatron-LM variant (34 + 12 N + 8 D bytes).

    Raises:
        UserError: not an MMapIndexedDataset index, or a size that fits neither layout.
    """
    if len(idx) >= len(_LEGACY_MAGIC) and bytes(idx[: len(_LEGACY_MAGIC)]) == _LEGACY_MAGIC:
        raise UserError(
            f"{idx_path}: fairseq's lazy/cached IndexedDataset format (TNTIDX), not mmap; "
            f"binarize with fairseq-preprocess --dataset-impl mmap (its default) or nmt-preprocess"
        )
    if len(idx) < _HEADER.size:
        raise UserError(
            f"{idx_path}: truncated index ({len(idx)} bytes, header needs {_HEADER.size})"
        )
    magic, version, code, n = _HEADER.unpack(bytes(idx[: _HEADER.size]))
    if magic != HDR_MAGIC:
        raise UserError(f"{idx_path}: not an MMapIndexedDataset index (bad magic {magic!r})")
    if version != VERSION:
        raise UserError(f"{idx_path}: unsupported index version {version} (expected 1)")
    if code not in DTYPE_CODES:
        raise UserError(f"{idx_path}: unknown dtype code {code}")
    fairseq_size = _HEADER.size + 12 * n
    if len(idx) == fairseq_size:
        return code, n, _HEADER.size
    sizes_at = _HEADER.size + _DOC_COUNT.size
    if len(idx) >= sizes_at:
        (ndoc,) = _DOC_COUNT.unpack(bytes(idx[_HEADER.size : sizes_at]))
        if len(idx) == sizes_at + 12 * n + 8 * ndoc:
            return code, n, sizes_at
    raise UserError(
        f"{idx_path}: {len(idx)} bytes, but {n} sequences need {fairseq_size} "
        f"(fairseq's layout) or 34 + {12 * n} + 8 per document (Megatron-LM's)"
    )


def _map(path: str) -> np.ndarray:
    """Memory-map a file as bytes (an empty file gives an empty array: mmap refuses length 0)."""
    if os.path.getsize(path) == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, mode="r", dtype=np.uint8)


def _read(fd: int, *, dtype: type[np.generic], count: int, offset: int) -> np.ndarray:
    """Up to ``count`` items of ``dtype`` at byte ``offset`` of ``fd`` (fewer at the end)."""
    raw = os.pread(fd, count * np.dtype(dtype).itemsize, offset)
    usable = len(raw) - len(raw) % np.dtype(dtype).itemsize
    return np.frombuffer(raw, dtype=dtype, count=usable // np.dtype(dtype).itemsize)


def _check_layout(
    sizes: np.ndarray,
    idx_fd: int,
    *,
    pointers_at: int,
    itemsize: int,
    bin_bytes: int,
    where: str,
) -> None:
    """Check that sequence i starts where i-1 ends and the last one ends at the .bin's end.

    The pointers are read block by block (not mapped), so the check leaves nothing resident.
    """
    end = 0
    for start in range(0, len(sizes), _CHECK_BLOCK):
        nbytes = sizes[start : start + _CHECK_BLOCK].astype(np.int64) * itemsize
        pointers = _read(idx_fd, dtype=np.int64, count=len(nbytes), offset=pointers_at + 8 * start)
        expected = end + np.cumsum(nbytes) - nbytes
        if (nbytes < 0).any() or len(pointers) != len(nbytes) or (pointers != expected).any():
            raise UserError(f"{where}.idx: corrupt sizes or pointers (not a contiguous layout)")
        end = int(expected[-1] + nbytes[-1])
    if end != bin_bytes:
        raise UserError(
            f"{where}.bin: {bin_bytes} bytes, but {where}.idx describes {end} "
            f"(truncated or corrupt)"
        )
