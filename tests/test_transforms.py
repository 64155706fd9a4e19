import numpy as np
import pytest
import torch

import harness
from harness.sphere.grids import GRID_KINDS
from harness.sphere.transforms import BACKENDS, legendre_plan

from .oracles import evaluate, quadrature, random_coefficients

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
CDTYPE = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def rel_max(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b", [1, 2, 5, 8])
def test_sft_equals_direct_quadrature_with_scipy(kind, b, backend):
    # any grid signal (not bandlimited): sft is the quadrature sum with sph_harm_y
    g = harness.grid(kind, b)
    f = np.random.default_rng(b).standard_normal((3, *g.shape))
    ref = quadrature(f, g.theta, g.phi, g.weights, b)
    got = harness.sft(torch.from_numpy(f), kind, backend=backend).numpy()
    l, m = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
    np.testing.assert_allclose(got, np.where(m <= l, ref, 0), atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b", [1, 2, 5, 8])
def test_isft_equals_pointwise_evaluation_with_scipy(kind, b, backend):
    g = harness.grid(kind, b)
    c = random_coefficients((2,), b, seed=b)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    ref = evaluate(c.numpy(), T, P)
    got = harness.isft(c, kind, backend=backend).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b", [1, 2, 8, 32, 128])
def test_round_trips(kind, b, dtype, backend):
    c = random_coefficients((3,), b, dtype=CDTYPE[dtype], seed=7)
    x = harness.isft(c, kind, backend=backend)
    assert x.dtype == dtype and x.shape == (3, *harness.grid(kind, b).shape)
    assert rel_max(harness.sft(x, kind, backend=backend), c) <= TOL[dtype]
    # sft -> isft of a bandlimited grid signal (made in float64 by the scipy-free other path)
    other = "torch" if backend == "ducc0" else "ducc0"
    x64 = harness.isft(random_coefficients((3,), b, seed=8), kind, backend=other).to(dtype)
    assert rel_max(harness.isft(harness.sft(x64, kind, backend=backend), kind, backend=backend), x64) <= TOL[dtype]


@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b", [3, 32, 100])
def test_torch_and_ducc0_paths_agree(kind, b):
    c = random_coefficients((4,), b, seed=3)
    xs = [harness.isft(c, kind, backend=be) for be in BACKENDS]
    assert rel_max(xs[0], xs[1]) <= 1e-12
    cs = [harness.sft(xs[0], kind, backend=be) for be in BACKENDS]
    assert rel_max(cs[0], cs[1]) <= 1e-12
    # beyond the bandlimit too (white noise: everything aliases): both are the same quadrature
    noise = torch.randn(4, *harness.grid(kind, b).shape, dtype=torch.float64)
    cs = [harness.sft(noise, kind, backend=be) for be in BACKENDS]
    assert rel_max(cs[0], cs[1]) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("kind", GRID_KINDS)
def test_round_trip_b512_float64(kind):
    c = random_coefficients((1,), 512, seed=5)
    for be in BACKENDS:
        x = harness.isft(c, kind, backend=be)
        assert rel_max(harness.sft(x, kind, backend=be), c) <= 1e-12, be
    if kind == "dh":  # the grid with the most rows; the memory bar is 1.2 GiB
        assert legendre_plan("dh", 512).table_bytes() <= 1.2 * 2**30


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", GRID_KINDS)
def test_gradcheck(kind, backend):
    b = 4
    x = torch.randn(2, *harness.grid(kind, b).shape, dtype=torch.float64, requires_grad=True)
    c = random_coefficients((2,), b, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: harness.sft(t, kind, backend=backend), (x,))
    assert torch.autograd.gradcheck(lambda t: harness.isft(t, kind, backend=backend), (c,))


def test_leading_dims_and_linearity():
    c = random_coefficients((2, 3), 6, seed=2)
    x = harness.isft(c)
    assert x.shape == (2, 3, 12, 12)
    np.testing.assert_allclose(x[1, 2].numpy(), harness.isft(c[1, 2]).numpy(), atol=1e-14)
    y = harness.sft(2 * x[0] - x[1])
    np.testing.assert_allclose(y.numpy(), (2 * c[0] - c[1]).numpy(), atol=1e-12)


def test_plan_cache_is_keyed_on_plain_values():
    assert legendre_plan("soft", 12) is legendre_plan("soft", 12)
    p32 = legendre_plan("soft", 12, torch.float32, "cpu")
    assert p32 is legendre_plan("soft", 12, torch.float32, torch.device("cpu"))
    assert all(t.dtype == torch.float32 for _, _, t in p32.chunks)


def test_degree_norms_are_l2_norms_of_the_signal():
    # Parseval: sum_l ||f_l||^2 = int f^2, checked by quadrature on the grid
    c = random_coefficients((), 9, seed=4)
    x = harness.isft(c, "gl")
    g = harness.grid("gl", 9)
    integral = float((torch.from_numpy(g.area_weights) * x * x).sum())
    assert abs(float(harness.degree_norms(c).square().sum()) - integral) <= 1e-12 * integral


def test_resize_coefficients_pads_and_truncates():
    c = random_coefficients((2,), 4, seed=0)
    up = harness.resize_coefficients(c, 7)
    assert up.shape == (2, 7, 7) and torch.equal(up[:, :4, :4], c) and not up[:, 4:].any()
    assert torch.equal(harness.resize_coefficients(up, 4), c)
    # the same function on a finer grid: zero-padding is exact upsampling
    g = harness.grid("dh", 7)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    np.testing.assert_allclose(harness.isft(up).numpy(), evaluate(c.numpy(), T, P), atol=1e-12)


class TestBadInput:
    def test_resize_refuses_a_bandwidth_below_one(self):
        with pytest.raises(ValueError, match="bandwidth: expected an int >= 1, got -1"):
            harness.resize_coefficients(torch.zeros(4, 4, dtype=torch.complex128), -1)  # was: bandwidth 3

    def test_shape_that_fits_no_bandwidth(self):
        with pytest.raises(ValueError, match=r"x: grid shape .* \(9, 8\) fits no bandwidth of the 'dh'"):
            harness.sft(torch.zeros(9, 8, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"'gl' grid, which is b x \(2b-1\)"):
            harness.sft(torch.zeros(4, 8, dtype=torch.float64), "gl")

    def test_bandwidth_below_one(self):
        with pytest.raises(ValueError, match="bandwidth must be >= 1, got b = 0"):
            harness.isft(torch.zeros(0, 0, dtype=torch.complex128))
        with pytest.raises(ValueError, match="fits no bandwidth"):
            harness.sft(torch.zeros(0, 0, dtype=torch.float64))

    def test_unknown_grid_lists_valid_ones(self):
        with pytest.raises(ValueError, match=r"unknown grid 'equiangular'; valid grids are \['dh', 'soft', 'gl', 'cc'\]"):
            harness.sft(torch.zeros(4, 4, dtype=torch.float64), "equiangular")
        with pytest.raises(ValueError, match="valid grids"):
            harness.isft(torch.zeros(2, 2, dtype=torch.complex128), "healpix")

    def test_integer_or_complex_signal(self):
        with pytest.raises(TypeError, match="x: expected a real float32 or float64 tensor, got dtype torch.int64"):
            harness.sft(torch.zeros(4, 4, dtype=torch.int64))
        with pytest.raises(TypeError, match="got dtype torch.complex128"):
            harness.sft(torch.zeros(4, 4, dtype=torch.complex128))
        with pytest.raises(TypeError, match="x: expected a torch.Tensor, got ndarray"):
            harness.sft(np.zeros((4, 4)))

    def test_real_coefficients(self):
        with pytest.raises(TypeError, match="coeffs: expected a complex64 or complex128 tensor"):
            harness.isft(torch.zeros(4, 4, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"coeffs: expected shape \[..., b, b\] \(l, m\), got shape \(4, 3\)"):
            harness.isft(torch.zeros(4, 3, dtype=torch.complex128))

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_values(self, bad):
        """Refused on request; otherwise (the per-layer hot path) they propagate, never vanish."""
        x = torch.zeros(2, 8, 8, dtype=torch.float64)
        x[1, 3, 4] = bad
        with pytest.raises(ValueError, match="x: expected finite values, got 1 nan/inf entries"):
            harness.sft(x, check_finite=True)
        assert not torch.isfinite(harness.sft(x)[1]).all() and torch.isfinite(harness.sft(x)[0]).all()
        c = torch.zeros(3, 3, dtype=torch.complex128)
        c[1, 1] = complex(0, bad)
        with pytest.raises(ValueError, match="coeffs: expected finite values"):
            harness.isft(c, check_finite=True)

    def test_empty_batches_conjugate_and_strided_views(self):
        for be in BACKENDS:
            for b in (8, 130):
                assert harness.sft(torch.zeros(0, 3, 2 * b, 2 * b), backend=be).shape == (0, 3, b, b)
                assert harness.isft(torch.zeros(0, b, b, dtype=torch.complex64), backend=be).shape == (0, 2 * b, 2 * b)
            c = random_coefficients((2,), 130)  # the ducc0 path read a conjugate view's raw memory
            np.testing.assert_allclose(harness.isft(c.conj(), backend=be).numpy(),
                                       harness.isft(c.conj().resolve_conj(), backend=be).numpy())
            x = torch.randn(3, 16, 16, dtype=torch.float64)
            xt = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # the same values, other strides
            np.testing.assert_allclose(harness.sft(xt, backend=be).numpy(), harness.sft(x, backend=be).numpy())
            np.testing.assert_allclose(harness.sft(x[:, :, :], backend=be).numpy()[::2],
                                       harness.sft(x[::2], backend=be).numpy())

    def test_a_bandwidth_too_large_for_the_machine_is_refused_at_once(self):
        import time

        from harness.util.memory import TooLarge

        t0 = time.perf_counter()
        with pytest.raises(TooLarge, match=r"the Legendre table for the 'dh' grid at bandwidth 4096 needs about [0-9.,]+ GiB,"
                                           r" but only [0-9.]+ GiB of memory is available"):
            harness.sft(torch.zeros(1, 8192, 8192, dtype=torch.float32), backend="torch")
        with pytest.raises(TooLarge, match=r"sft of 100000 maps at bandwidth 512"):  # a view that holds 4 bytes
            harness.sft(torch.zeros(1, 1, 1).expand(100000, 1024, 1024))
        assert time.perf_counter() - t0 < 5

    def test_huge_but_finite_values_pass(self):
        x = torch.full((4, 4), 1e308, dtype=torch.float64)  # the sum overflows; the values do not
        for be in BACKENDS:
            harness.sft(x, backend=be)  # must not raise

    def test_unknown_backend(self):
        with pytest.raises(ValueError, match=r"unknown backend 'shtns'; valid backends are \['torch', 'ducc0'\]"):
            harness.sft(torch.zeros(4, 4, dtype=torch.float64), backend="shtns")


# --------------------------------------------------------------------------- fewer degrees than the grid
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b, L", [(5, 1), (8, 3), (6, 6)])
def test_sft_of_fewer_degrees_equals_direct_quadrature_with_scipy(kind, b, L, backend):
    # any grid signal (not band-limited): the quadrature sum against sph_harm_y for l < L only
    g = harness.grid(kind, b)
    f = np.random.default_rng(b + L).standard_normal((2, *g.shape))
    ref = quadrature(f, g.theta, g.phi, g.weights, L)
    got = harness.sft(torch.from_numpy(f), kind, degrees=L, backend=backend).numpy()
    assert got.shape == (2, L, L)
    l, m = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    np.testing.assert_allclose(got, np.where(m <= l, ref, 0), atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("L, b", [(1, 4), (3, 8), (5, 5)])
def test_isft_onto_a_finer_grid_equals_pointwise_evaluation_with_scipy(kind, L, b, backend):
    g = harness.grid(kind, b)
    c = random_coefficients((2,), L, seed=L + b)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    got = harness.isft(c, kind, grid_bandwidth=b, backend=backend).numpy()
    assert got.shape == (2, *g.shape)
    np.testing.assert_allclose(got, evaluate(c.numpy(), T, P), atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("b, L", [(9, 4), (48, 40), (70, 33), (40, 20)])  # dense and packed tables
def test_fewer_degrees_equal_the_full_transform_truncated_or_padded(kind, b, L, dtype, backend):
    g = harness.grid(kind, b)
    x = torch.randn(3, *g.shape, dtype=dtype, generator=torch.Generator().manual_seed(b))  # not band-limited
    full = harness.sft(x, kind, backend=backend)
    part = harness.sft(x, kind, degrees=L, backend=backend)
    assert rel_max(part, full[..., :L, :L]) <= TOL[dtype]
    c = random_coefficients((3,), L, dtype=CDTYPE[dtype], seed=L)
    fine = harness.isft(c, kind, grid_bandwidth=b, backend=backend)
    assert rel_max(fine, harness.isft(harness.resize_coefficients(c, b), kind, backend=backend)) <= TOL[dtype]


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_fewer_degrees_gradcheck(kind):
    x = torch.randn(2, *harness.grid(kind, 6).shape, dtype=torch.float64, requires_grad=True)
    c = random_coefficients((2,), 3, seed=1).requires_grad_(True)
    for be in BACKENDS:
        assert torch.autograd.gradcheck(lambda t: harness.sft(t, kind, degrees=3, backend=be), (x,))
        assert torch.autograd.gradcheck(lambda t: harness.isft(t, kind, grid_bandwidth=6, backend=be), (c,))


@pytest.mark.parametrize("kind", GRID_KINDS)
@pytest.mark.parametrize("B, L", [(4, 2), (6, 6), (9, 5)])
def test_analysis_is_exact_up_to_the_stated_signal_bandwidth_and_not_beyond(kind, B, L):
    """docs/conventions.md: the grid's quadrature computes degrees < L of a signal of bandwidth
    b_f exactly iff b_f <= exact_analysis_bandwidth (2B + 1 - L; 2B - L on gl). The signal is
    evaluated pointwise by scipy, so its true coefficients are the ones it was made of."""
    from harness.sphere.grids import exact_analysis_bandwidth

    g = harness.grid(kind, B)
    T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
    bf = exact_analysis_bandwidth(kind, B, L)
    assert bf == (2 * B - L if kind == "gl" else 2 * B + 1 - L)
    for n, exact in ((bf, True), (bf + 1, False)):
        c = random_coefficients((3,), n, seed=n)
        x = torch.from_numpy(evaluate(c.numpy(), T, P))
        for be in BACKENDS:
            err = rel_max(harness.sft(x, kind, degrees=L, backend=be), c[..., :L, :L])
            assert (err < 1e-12) == exact, (n, be, err)


def test_min_exact_grid_is_exact_and_one_ring_or_one_longitude_fewer_aliases():
    from harness.sphere.grids import exact_analysis_bandwidth, min_exact_grid, smooth_size
    from harness.sphere.transforms import analysis

    b, bf = 7, 14  # degrees < 7 of a bandwidth-14 signal: D = (bf - 1) + (b - 1) = 19
    g = min_exact_grid("gl", bf, b)
    assert (g.nlat, g.nlon) == (10, smooth_size(20)) == (10, 20)  # ceil(20 / 2) rings, >= 20 longitudes
    assert exact_analysis_bandwidth("gl", 10, b, 20) == bf
    c = random_coefficients((2,), bf, seed=3)

    def err(grid):
        T, P = np.meshgrid(grid.theta, grid.phi, indexing="ij")
        x = torch.from_numpy(evaluate(c.numpy(), T, P))
        return rel_max(analysis(x, grid, b), c[..., :b, :b])

    assert err(g) < 1e-12
    assert err(harness.grid("gl", 9, 20)) > 1e-6  # one ring fewer
    assert err(harness.grid("gl", 10, 19)) > 1e-6  # D = 19 longitudes fold order 19 onto 0


class TestFewerDegreesBadInput:
    def test_more_degrees_than_the_grid_holds(self):
        x = torch.zeros(1, 8, 8, dtype=torch.float64)
        with pytest.raises(ValueError, match=r"degrees: expected at most the grid's bandwidth 4 .*got 5"):
            harness.sft(x, "dh", degrees=5)
        with pytest.raises(TypeError, match=r"degrees: expected an int >= 1, got 2.0"):
            harness.sft(x, "dh", degrees=2.0)

    def test_a_grid_too_coarse_for_the_coefficients(self):
        c = torch.zeros(1, 6, 6, dtype=torch.complex128)
        with pytest.raises(ValueError, match=r"grid_bandwidth: expected at least the coefficients' bandwidth 6"
                                             r" .*got 5"):
            harness.isft(c, "dh", grid_bandwidth=5)
        with pytest.raises(TypeError, match=r"grid_bandwidth: expected an int >= 1, got True"):
            harness.isft(c, "dh", grid_bandwidth=True)

    def test_too_few_longitudes(self):
        with pytest.raises(ValueError, match=r"nlon: expected at least 2b - 1 = 11 longitudes .*got 10"):
            harness.grid("gl", 6, nlon=10)


@pytest.mark.parametrize("L, B", [(5, 7), (40, 50)])  # the points-first kernels (dense tables) and the FFT ones
@pytest.mark.parametrize("kind", ["dh", "gl"])
def test_apply_on_grid_is_synthesis_f_analysis(kind, L, B):
    """One synthesis onto the grid, f on points-first samples [nlon, nlat, n, C] (here mixing the
    channels), one analysis of the L degrees kept: against scipy's pointwise evaluation and
    direct quadrature where that is cheap (L = 5), against the public transforms otherwise."""
    from harness.sphere.transforms import apply_on_grid

    c = random_coefficients((2, 3), L, seed=L)
    W = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = harness.grid(kind, B)
    got = apply_on_grid(c, lambda t: (t @ W.T) * t, g)
    if L <= 8:
        T, P = np.meshgrid(g.theta, g.phi, indexing="ij")
        u = evaluate(c.numpy(), T, P)  # [2, 3, nlat, nlon]
        y = np.einsum("oc,bcjk->bojk", W.numpy(), u) * u
        ref = torch.from_numpy(quadrature(y, g.theta, g.phi, g.weights, L))
        ref = ref * torch.tril(torch.ones(L, L, dtype=torch.float64))
    else:
        u = harness.isft(c, kind, grid_bandwidth=B)
        ref = harness.sft(torch.einsum("oc,bc...->bo...", W, u) * u, kind, degrees=L)
    assert got.shape == c.shape and rel_max(got, ref) < 1e-12
    with torch.no_grad():  # the grouped path (no autograd) gives the same
        from harness.sphere import transforms

        small = transforms._GROUP_MIN_ELEMENTS
        transforms._GROUP_MIN_ELEMENTS = 1
        try:
            assert rel_max(apply_on_grid(c, lambda t: (t @ W.T) * t, g), ref) < 1e-12
        finally:
            transforms._GROUP_MIN_ELEMENTS = small


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_on_grid_gradcheck_and_jvp(backend):
    from harness.sphere.transforms import apply_on_grid

    g = harness.grid("gl", 5, 12)
    c = random_coefficients((2,), 4, seed=2).requires_grad_(True)
    f = lambda t: apply_on_grid(t, torch.tanh, g, backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (c,))
    t = random_coefficients((2,), 4, seed=3)
    _, jvp = torch.func.jvp(f, (c.detach(),), (t,))
    eps = 1e-6
    fd = (f(c.detach() + eps * t) - f(c.detach() - eps * t)) / (2 * eps)
    assert rel_max(jvp, fd) < 1e-8


def test_messages_that_name_the_mistake():
    with pytest.raises(TypeError, match=r"coeffs: expected a complex64 or complex128 tensor \[\.\.\., l, m\], got dtype torch.float32"):
        harness.degree_norms(torch.zeros(2, 3, 3))  # was: "view_as_real is only supported for complex tensors"
    with pytest.raises(TypeError, match=r"x: expected a dense \(strided\) tensor, got layout torch.sparse_coo"):
        harness.sft(torch.zeros(4, 4, dtype=torch.float64).to_sparse())  # was: "reshape is not implemented ..."
