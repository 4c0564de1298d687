"""Genred against NumPy: reductions, axes, dtypes, parameters, ranges, and the arrays'
journey (no copy when the layout allows, out= in place, clear errors otherwise)."""
import numpy as np
import pytest

import kforge
from kforge import Genred

GAUSS = "Exp(-SqDist(x,y)*g)*b"
ALIASES = ["x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,2)", "g=Pm(3,1)"]


def dense_gauss(x, y, b, g):
    return np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) * g) @ b


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_gaussian_sum_both_axes(rng, dtype, tol):
    x, y = rng.random((70, 3)).astype(dtype), rng.random((50, 3)).astype(dtype)
    b, g = rng.standard_normal((50, 2)).astype(dtype), np.array([2.0], dtype)
    a = Genred(GAUSS, ALIASES, "Sum", axis=1)(x, y, b, g)
    assert a.dtype == dtype and a.shape == (70, 2)
    ref = dense_gauss(x.astype(float), y.astype(float), b.astype(float), 2.0)
    assert np.max(np.abs(a - ref)) <= tol * np.max(np.abs(ref))
    # axis 0: the rows are the j-points; swap the roles through the aliases.
    c = rng.standard_normal((70, 2)).astype(dtype)
    a0 = Genred("Exp(-SqDist(x,y)*g)*c", ["x=Vi(0,3)", "y=Vj(1,3)", "c=Vi(2,2)", "g=Pm(3,1)"],
                "Sum", axis=0)(x, y, c, g)
    ref0 = dense_gauss(y.astype(float), x.astype(float), c.astype(float), 2.0)
    assert a0.shape == (50, 2)
    assert np.max(np.abs(a0 - ref0)) <= tol * np.max(np.abs(ref0))


def test_min_argmin_argkmin_logsumexp(rng):
    x, y = rng.random((40, 2)), rng.random((30, 2))
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    al = ["x=Vi(0,2)", "y=Vj(1,2)"]
    v, i = Genred("SqDist(x,y)", al, "Min_ArgMin", axis=1)(x, y)
    assert i.dtype == np.int64
    assert np.allclose(v.ravel(), d2.min(1)) and np.array_equal(i.ravel(), d2.argmin(1))
    k = Genred("SqDist(x,y)", al, "ArgKMin", axis=1, opt_arg=3)(x, y)
    assert k.shape == (40, 3) and np.array_equal(k, np.argsort(d2, axis=1, kind="stable")[:, :3])
    lse = Genred("-SqDist(x,y)", al, "LogSumExp", axis=1)(x, y)
    assert np.allclose(lse.ravel(), np.log(np.exp(-d2).sum(1)))
    w = rng.standard_normal((30, 1))
    smw = Genred("-SqDist(x,y)", al + ["w=Vj(2,1)"], "SumSoftMaxWeight", axis=1, formula2="w")(x, y, w)
    p = np.exp(-d2)
    assert np.allclose(smw.ravel(), (p @ w).ravel() / p.sum(1))
    # LogSumExp with a formula2 is pykeops' weighted log-sum-exp: log sum_j exp(f) g.
    lsw = Genred("-SqDist(x,y)", al + ["w=Vj(2,1)"], "LogSumExp", axis=1, formula2="Exp(w)")(x, y, w)
    assert np.allclose(lsw.ravel(), np.log(p @ np.exp(w)).ravel())


def test_sum_schemes_and_double_accumulation(rng):
    x, y = rng.random((20, 1)).astype(np.float32), rng.random((3000, 1)).astype(np.float32)
    ref = (x * y.T).sum(1).astype(np.float64)
    for kw in ({"sum_scheme": "kahan_scheme"}, {"sum_scheme": "direct_sum"}, {"use_double_acc": True},
               {"dtype_acc": "float64"}):
        a = Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1, **kw)(x, y)
        assert np.allclose(a.ravel(), ref, rtol=1e-5), kw
    with pytest.raises(ValueError, match="sum_scheme"):
        Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1, sum_scheme="fancy")


def test_ranges_restrict_the_sum(rng):
    x, y = rng.random((60, 1)), rng.random((40, 1))
    # i rows [0, 30) see j [0, 10) and [20, 40); rows [30, 60) see j [10, 20).
    ranges_i = np.array([[0, 30], [30, 60]])
    slices_i = np.array([2, 3])
    redranges_j = np.array([[0, 10], [20, 40], [10, 20]])
    ranges = (ranges_i, slices_i, redranges_j, np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)))
    a = Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1)(x, y, ranges=ranges)
    mask = np.zeros((60, 40), bool)
    mask[:30, :10] = mask[:30, 20:] = mask[30:, 10:20] = True
    assert np.allclose(a.ravel(), ((x * y.T) * mask).sum(1))
    bad = (ranges_i, slices_i, np.array([[0, 10], [20, 41], [10, 20]])) + ranges[3:]
    with pytest.raises(kforge.ArgumentError, match="redranges_j"):
        Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1)(x, y, ranges=bad)
    with pytest.raises(ValueError, match="6 arrays"):
        Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1)(x, y, ranges=ranges[:3])


def test_no_copy_when_the_layout_allows(rng):
    kern = kforge.Kernel("x*y", ["x=Vi(0,2)", "y=Vj(1,2)"], "Sum", 1, np.float64)
    x, y = rng.random((10, 2)), rng.random((8, 2))
    _, _, bound = kern.bind([x, y])
    assert np.shares_memory(bound[0], x) and np.shares_memory(bound[1], y)
    xt = np.asfortranarray(x)  # not C-contiguous: converted, and still right
    _, _, bound = kern.bind([xt, y])
    assert not np.shares_memory(bound[0], xt)
    g = Genred("x*y", ["x=Vi(0,2)", "y=Vj(1,2)"], "Sum", axis=1)
    assert np.allclose(g(xt, y), g(x, y))
    out = np.zeros((10, 2))
    r = g(x, y, out=out)
    assert np.shares_memory(r, out) and np.allclose(out, (x[:, None, :] * y[None]).sum(1))


def test_argument_errors(rng):
    g = Genred("x*y", ["x=Vi(0,2)", "y=Vj(1,2)"], "Sum", axis=1)
    x, y = rng.random((10, 2)), rng.random((8, 2))
    with pytest.raises(ValueError, match="2 variables"):
        g(x)
    with pytest.raises(ValueError, match=r"must have shape \(n, 2\)"):
        g(x, rng.random((8, 3)))
    with pytest.raises(TypeError, match="mix dtypes"):
        g(x, y.astype(np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        g(np.ones((3, 2), np.int64), np.ones((3, 2), np.int64))
    g2 = Genred("x*y+z", ["x=Vi(0,1)", "y=Vj(1,1)", "z=Vi(2,1)"], "Sum", axis=1)
    with pytest.raises(ValueError, match="10 rows but argument 0"):
        g2(np.ones(3), np.ones(4), np.ones(10))
    with pytest.raises(ValueError, match="axis"):
        Genred("x", ["x=Vi(0,1)"], "Sum", axis=2)
    with pytest.raises(ValueError, match="out must be"):
        g(x, y, out=np.zeros((10, 3)))


def test_gpu_backend_or_its_reason(rng):
    """backend="GPU" runs on kforge's CUDA backend where a GPU is usable, and otherwise
    says why it is not."""
    g = Genred("x*y", ["x=Vi(0,1)", "y=Vj(1,1)"], "Sum", axis=1)
    x, y = rng.random(30), rng.random(20)
    if kforge.config.gpu_available:
        assert np.allclose(g(x, y, backend="GPU"), g(x, y, backend="CPU"))
    else:
        with pytest.raises(kforge.KforgeError) as e:
            g(x, y, backend="GPU")
        assert e.value.status_name == "KF_ERR_DEVICE" and e.value.message
    with pytest.raises(ValueError, match="unknown backend"):
        g(x, y, backend="TPU")


def test_threads_share_the_context(rng):
    """Calls from several Python threads are serialized on the one context and all right."""
    import threading
    g = Genred("Exp(-SqDist(x,y))*b", ["x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)"], "Sum", axis=1)
    data = [(rng.random((200, 2)), rng.random((150, 2)), rng.random((150, 1))) for _ in range(8)]
    got = [None] * 8

    def work(k):
        for _ in range(5):
            got[k] = g(*data[k])
    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for (x, y, b), a in zip(data, got):
        assert np.allclose(a, np.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b)
