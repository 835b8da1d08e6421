"""``multifashion``: two Fashion-MNIST items overlaid on one image, one 10-class task per item.

The MultiMNIST-style construction of Sener & Koltun (NeurIPS 2018) as used for
MultiFashion by Lin et al. (NeurIPS 2019, Pareto MTL): item A is placed at the
top-left and item B at the bottom-right of a 36x36 canvas (each 28x28 item
shifted 8 pixels apart in both directions, so they overlap), the two are
merged with a pixel-wise maximum, and the canvas is resized back to 28x28
(``torch.nn.functional.interpolate``, bilinear with anti-aliasing). The
result is ``x`` ``[N, 1, 28, 28]`` float32 in ``[0, 1]`` and two tasks,
``"left"`` (class of A) and ``"right"`` (class of B).

Source images are read from the standard IDX files
(``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``) with numpy
(and :mod:`gzip`), never unpickled. By default they come from
``/usr/share/datasets/fashion-mnist`` where Debian's ``dataset-fashion-mnist``
package installs them; ``root=`` names another folder.

Train and val examples are built from disjoint parts of the IDX training
images (so no source image appears in both), test examples from the t10k
images; pairs are drawn at random with ``seed``.

Example
-------
>>> import numpy as np, tempfile, os
>>> with tempfile.TemporaryDirectory() as root:
...     arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
...     write_idx(os.path.join(root, "a-idx3-ubyte"), arr)
...     read_idx(os.path.join(root, "a-idx3-ubyte")).tolist() == arr.tolist()
True
"""

from __future__ import annotations

from sharesearch.errors import SharesearchError

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sharesearch.data._base import MultiTaskData
from sharesearch.tasks import TaskSpec

__all__ = ["DEFAULT_ROOT", "FASHION_CLASSES", "make_multifashion", "read_idx", "write_idx", "overlay_pairs"]

#: where Debian's ``dataset-fashion-mnist`` package installs the IDX files
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CANVAS = 36
SHIFT = CANVAS - 28


def read_idx(path: "str | os.PathLike[str]") -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed, by a ``.gz`` suffix) into a numpy array.

    Raises ``ValueError`` naming the file when the header or size is wrong.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as root:
    ...     p = os.path.join(root, "l-idx1-ubyte.gz")
    ...     write_idx(p, np.array([3, 1, 4], dtype=np.uint8))
    ...     read_idx(p).tolist()
    [3, 1, 4]
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise SharesearchError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise SharesearchError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(body) != size:
        raise SharesearchError(f"{path}: IDX body has {len(body)} bytes, header shape {shape} needs {size}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: "str | os.PathLike[str]", array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as root:
    ...     write_idx(os.path.join(root, "x-idx1-ubyte"), np.zeros(4, np.uint8))
    ...     os.path.getsize(os.path.join(root, "x-idx1-ubyte"))
    12
    """
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        raise SharesearchError(f"write_idx: only uint8 arrays are supported, got {a.dtype}")
    data = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def _load_part(root: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    img_stem, lab_stem = _FILES[part]
    paths = [_find(root, img_stem), _find(root, lab_stem)]
    missing = [s for s, p in zip((img_stem, lab_stem), paths) if p is None]
    if missing:
        raise FileNotFoundError(
            f"multifashion: Fashion-MNIST IDX file(s) {', '.join(m + '[.gz]' for m in missing)} not found in {root}; "
            f"install them with `apt-get install dataset-fashion-mnist` (goes to {DEFAULT_ROOT}) "
            f"or pass root=<folder with the IDX files>"
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise SharesearchError(f"{paths[0]}: expected uint8 images [N, 28, 28], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise SharesearchError(f"{paths[1]}: expected {len(images)} labels, got shape {labels.shape}")
    if labels.size and int(labels.max()) > 9:
        raise SharesearchError(f"{paths[1]}: label {int(labels.max())} is not a Fashion-MNIST class 0..9")
    return images, labels.astype(np.int64)


def overlay_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlay uint8 images ``a`` (top-left) and ``b`` (bottom-right) ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` in [0, 1].

    Examples
    --------
    >>> a = torch.zeros(1, 28, 28, dtype=torch.uint8); a[0, 0, 0] = 255
    >>> b = torch.zeros(1, 28, 28, dtype=torch.uint8); b[0, -1, -1] = 255
    >>> out = overlay_pairs(a, b)
    >>> tuple(out.shape), bool(out[0, 0, 0, 0] > 0), bool(out[0, 0, -1, -1] > 0), float(out.max()) <= 1.0
    ((1, 1, 28, 28), True, True, True)
    """
    n = a.shape[0]
    canvas_a = torch.zeros(n, CANVAS, CANVAS, dtype=torch.uint8)
    canvas_b = torch.zeros(n, CANVAS, CANVAS, dtype=torch.uint8)
    canvas_a[:, :28, :28] = a
    canvas_b[:, SHIFT:, SHIFT:] = b
    merged = torch.maximum(canvas_a, canvas_b).float().div_(255.0).unsqueeze(1)
    out = F.interpolate(merged, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0).contiguous()


def make_multifashion(
    root: "str | os.PathLike[str] | None" = None,
    n_train: int = 6000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> MultiTaskData:
    """Build MultiFashion from Fashion-MNIST IDX files (see the module docstring).

    Parameters
    ----------
    root : path, optional
        Folder with the four IDX files (``.gz`` or not); default
        ``/usr/share/datasets/fashion-mnist`` (Debian ``dataset-fashion-mnist``).
    n_train, n_val, n_test : int
        Number of overlaid examples per split (train/val from the IDX training
        images, test from the t10k images).
    seed : int
        Seed of the pairing; also recorded as ``split_seed``.

    Raises
    ------
    FileNotFoundError
        One line naming the missing file(s) and how to get them.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     rng = np.random.default_rng(0)
    ...     for part, k in (("train", 40), ("t10k", 10)):
    ...         write_idx(f"{root}/{part}-images-idx3-ubyte", rng.integers(0, 256, (k, 28, 28), dtype=np.uint8))
    ...         write_idx(f"{root}/{part}-labels-idx1-ubyte", (np.arange(k) % 10).astype(np.uint8))
    ...     d = make_multifashion(root, n_train=20, n_val=5, n_test=5)
    >>> d.task_names, d.input_shape, d.backbone_hint
    (['left', 'right'], (1, 28, 28), 'cnn')
    """
    root_path = Path(root) if root is not None else DEFAULT_ROOT
    n_train, n_val, n_test = int(n_train), int(n_val), int(n_test)
    if n_train < 1 or n_val < 0 or n_test < 0:
        raise SharesearchError(f"multifashion: need n_train >= 1, n_val >= 0, n_test >= 0; got {n_train}, {n_val}, {n_test}")
    tr_img, tr_lab = _load_part(root_path, "train")
    te_img, te_lab = _load_part(root_path, "test")
    rng = np.random.default_rng(int(seed))
    perm = rng.permutation(len(tr_img))
    # hold out source images for val in proportion to the requested val share
    n_val_src = int(round(len(tr_img) * n_val / (n_train + n_val))) if n_val else 0
    n_val_src = min(max(n_val_src, 1 if n_val else 0), len(tr_img) - 1)
    pools = {"train": perm[n_val_src:], "val": perm[:n_val_src]}
    if len(pools["train"]) < 1 or (n_val and len(pools["val"]) < 1) or (n_test and len(te_img) < 1):
        raise SharesearchError(f"multifashion: not enough source images in {root_path} for the requested sizes")

    xs, ys, codes = [], [], []
    for code, (count, img, lab, pool) in enumerate(
        (
            (n_train, tr_img, tr_lab, pools["train"]),
            (n_val, tr_img, tr_lab, pools["val"]),
            (n_test, te_img, te_lab, np.arange(len(te_img))),
        )
    ):
        if count == 0:
            continue
        ia = pool[rng.integers(0, len(pool), count)]
        ib = pool[rng.integers(0, len(pool), count)]
        xs.append(overlay_pairs(torch.from_numpy(img[ia]), torch.from_numpy(img[ib])))
        ys.append(np.stack([lab[ia], lab[ib]], axis=1))
        codes.append(np.full(count, code, dtype=np.int8))
    tasks = [
        TaskSpec("left", "multiclass", n_classes=10, classes=FASHION_CLASSES),
        TaskSpec("right", "multiclass", n_classes=10, classes=FASHION_CLASSES),
    ]
    return MultiTaskData(
        name="multifashion",
        tasks=tasks,
        x=torch.cat(xs),
        y=torch.from_numpy(np.concatenate(ys).astype(np.float32)),
        split=torch.from_numpy(np.concatenate(codes)),
        split_seed=int(seed),
        meta={
            "source": "multifashion",
            "options": {"root": str(root_path), "n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": int(seed)},
            "construction": "A top-left + B bottom-right on a 36x36 canvas, pixel-wise max, bilinear resize to 28x28",
            "class_names": list(FASHION_CLASSES),
        },
    )
