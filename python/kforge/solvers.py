"""solvers.py -- kforge's native operators and eigensolver, and the built-in clouds.

kernel_operator(K) and laplacian(K) turn a scalar LazyTensor into a kf_linop
(the C operator: its matrix-vector products never return to Python) wrapped
as a scipy LinearOperator, so scipy's own eigsh, cg, ... take them too;
eigsh() runs kf_spectral on them, ARPACK's Lanczos or the block solver in C,
as `kforge eigsh` does (docs/solvers.md). gen() gives `kforge gen`'s clouds.
"""
import ctypes

import numpy as np
from scipy.sparse.linalg import LinearOperator

from . import _lib, genred
from ._lib import lib, LOCK
from .errors import NoConvergence
from .lazy import LazyTensor

WHICH = {"LM": 0, "SM": 1, "LA": 2, "SA": 3, "BE": 4}
MODES = {"auto": 0, "direct": 1, "shifted": 2, "coarse": 3}
SOLVERS = {"auto": 0, "arpack": 1, "block": 2}
GRAPHS = {None: 0, "none": 0, "unnormalized": 1, "normalized": 2}


def _pick(table, value, what):
    if value not in table:
        raise ValueError("kforge: unknown %s %r (one of %s)"
                         % (what, value, ", ".join(str(k) for k in table if k is not None)))
    return table[value]


class Operator(LinearOperator):
    """A symmetric n x n operator living in the C library (a kf_linop). A product with a
    block of b vectors is one kernel run. `matvecs` counts the columns applied so far."""

    def __init__(self, handle, n, dtype, keep, base=None, kind=0, degrees=None):
        self._h = handle
        super().__init__(np.dtype(dtype), (n, n))
        self._keep = keep        # the arrays the C operator borrows
        self.base = base         # the kernel operator under a Laplacian (None for a kernel)
        self.kind = kind         # 0 the kernel, 1 L = diag(D) - K, 2 L_norm = I - D^-1/2 K D^-1/2
        self.degrees = degrees   # D = K 1 of a Laplacian

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        _lib.release(lib.kf_linop_free, h)

    def _apply(self, x):
        n = self.shape[0]
        b = 1 if x.ndim == 1 else x.shape[1]
        x = np.ascontiguousarray(x, dtype=self.dtype).reshape(n, b)
        y = np.empty((n, b), self.dtype)
        with LOCK:
            _lib.check(lib.kf_linop_apply(self._h, x.ctypes.data, y.ctypes.data, b))
        return y

    def _matvec(self, x):
        return self._apply(np.asarray(x).reshape(-1)).reshape(-1)

    def _matmat(self, X):
        return self._apply(np.asarray(X))

    def _adjoint(self):
        return self

    @property
    def matvecs(self):
        return lib.kf_linop_matvecs(self._h)


def kernel_operator(K, jit=None):
    """K (a scalar LazyTensor with as many i- as j-points, symmetric: that is the caller's
    promise) as a native Operator; K.ranges makes it block-sparse."""
    if not isinstance(K, LazyTensor):
        raise TypeError("kforge: kernel_operator takes a LazyTensor")
    if K.ndim != 1 or K.ni is None or K.ni != K.nj:
        raise ValueError("kforge: a kernel operator is a scalar LazyTensor of shape (n, n); "
                         "this one has shape %s" % (K.shape,))
    vars = K._vars
    formula = "(%s) * kf_v" % K.formula
    args = (ctypes.c_void_p * (len(vars) + 1))()
    for i, v in enumerate(vars):
        args[i] = v.array.ctypes.data
    o = _lib.CompileOpts()
    lib.kf_compile_opts_init(ctypes.byref(o))
    o.jit = genred._enum(genred.JITS, jit, "jit engine")
    o.backend = genred._enum(genred.BACKENDS, K.backend, "backend")
    keep = [v.array for v in vars]
    rg = None
    if K.ranges is not None:
        rg, arrs = genred.ranges_struct(K.ranges)
        keep += arrs
    with LOCK:
        h = lib.kf_linop_formula(_lib.ctx(), formula.encode(), None, 0, b"kf_v", len(vars), args,
                                 len(vars) + 1, K.ni, genred.DTYPES[K.dtype], ctypes.byref(o),
                                 ctypes.byref(rg) if rg is not None else None)
        if not h:
            raise _lib.fail(lib.kf_status_of(_lib.ctx()), [formula])
    keep.append(rg)
    return Operator(h, K.ni, K.dtype, keep)


def laplacian(K, normalized=False, jit=None):
    """The graph Laplacian of the kernel matrix K: L = diag(D) - K, or with normalized=True
    L_norm = I - D^-1/2 K D^-1/2, the degrees D = K 1 computed once (in .degrees)."""
    base = K if isinstance(K, Operator) and K.kind == 0 else kernel_operator(K, jit)
    kind = 2 if normalized else 1
    deg = np.empty(base.shape[0], base.dtype)
    with LOCK:
        h = lib.kf_linop_graph(base._h, kind, None, deg.ctypes.data)
        if not h:
            raise _lib.fail(lib.kf_status_of(_lib.ctx()))
    return Operator(h, base.shape[0], base.dtype, [], base=base, kind=kind, degrees=deg)


def eigsh(A, k=6, which=None, laplacian=None, mode="auto", solver="auto", block=0, tol=0.0,
          ncv=0, maxiter=0, v0=None, seed=1, return_eigenvectors=True, return_report=False):
    """k eigenpairs of a kernel matrix or of its graph Laplacian, solved in C (kf_spectral).

    A is a scalar LazyTensor K (then laplacian=None, "unnormalized" or "normalized" says
    which matrix), or an Operator from kernel_operator() or laplacian(). which: "LM"
    (default for K), "SM" (default for a Laplacian), "LA", "SA", "BE". mode: "auto",
    "direct", "shifted", "coarse"; solver: "auto", "arpack", "block"; tol 0 = machine
    precision; ncv, maxiter 0 = the defaults (include/kforge.h). Returns (values, vectors)
    as scipy's eigsh does (values ascending, vectors (n, k)), values alone with
    return_eigenvectors=False, and a dict of what the solve did last with return_report.
    Stopping at maxiter raises NoConvergence, with the converged values in .values."""
    if isinstance(A, Operator):
        if laplacian is not None:
            raise ValueError("kforge: laplacian= is for a LazyTensor; this Operator already is "
                             "what it is")
        base, kind = (A.base, A.kind) if A.kind else (A, 0)
    else:
        base, kind = kernel_operator(A), _pick(GRAPHS, laplacian, "laplacian")
    n, dtype = base.shape[0], base.dtype
    o = _lib.SpectralOpts()
    lib.kf_spectral_opts_init(ctypes.byref(o))
    o.eig.k = int(k)
    o.eig.which = _pick(WHICH, which or ("SM" if kind else "LM"), "which")
    o.eig.tol, o.eig.ncv, o.eig.maxiter, o.eig.seed = float(tol), int(ncv or 0), int(maxiter or 0), int(seed)
    if v0 is not None:
        v0 = np.ascontiguousarray(v0, dtype=dtype).reshape(-1)
        if len(v0) != n:
            raise ValueError("kforge: v0 must have %d values; got %d" % (n, len(v0)))
        o.eig.v0 = v0.ctypes.data
    o.laplacian = kind
    o.mode = _pick(MODES, mode, "mode")
    o.solver = _pick(SOLVERS, solver, "solver")
    o.block = int(block)
    if not 1 <= o.eig.k < n:
        raise ValueError("kforge: k must be in [1, n) = [1, %d); got %d" % (n, k))
    values = np.empty(o.eig.k, dtype)
    vectors = np.empty((n, o.eig.k), dtype) if return_eigenvectors else None
    res = np.empty(o.eig.k, np.float64)
    rep = _lib.EigshReport()
    used = ctypes.c_int()
    with LOCK:
        rc = lib.kf_spectral(base._h, ctypes.byref(o), values.ctypes.data,
                             vectors.ctypes.data if vectors is not None else None,
                             res.ctypes.data, ctypes.byref(rep), ctypes.byref(used))
        err = _lib.fail(rc) if rc != _lib.KF_OK else None
    report = {name: getattr(rep, name) for name, _ in rep._fields_}
    report["mode"] = [m for m, v in MODES.items() if v == used.value][0]
    report["solver"] = [s for s, v in SOLVERS.items() if v == rep.solver][0]
    report["residuals"] = res
    if err is not None:
        if isinstance(err, NoConvergence):
            c = rep.converged
            err.values, err.report = values[:c], report
            err.vectors = vectors[:, :c] if vectors is not None else None
        raise err
    out = (values, vectors) if return_eigenvectors else (values,)
    if return_report:
        out += (report,)
    return out if len(out) > 1 else out[0]


def gen(spec, dtype=np.float64):
    """The built-in cloud "spiral:N[:SEED]" or "swissroll:N[:SEED]" as an (N, 2 or 3) array:
    exactly `kforge gen`'s and `kforge eigsh --gen`'s points (float32 is their cast)."""
    g = _lib.Gen()
    err = ctypes.create_string_buffer(300)
    if lib.kf_gen_parse(str(spec).encode(), ctypes.byref(g), err, len(err)) != _lib.KF_OK:
        raise ValueError("kforge: " + err.value.decode())
    x = np.empty((g.n, lib.kf_gen_dim(g.kind)), np.float64)
    lib.kf_gen_points(ctypes.byref(g), x.ctypes.data)
    return x.astype(genred.float_dtype(dtype), copy=False)
