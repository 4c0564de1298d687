"""genred.py -- compiled kernels and Genred, pykeops.numpy's generic reduction.

A Kernel is one kf_kernel (formula, reduction, axis, dtype, options); kernels
are kept in a small table so that a LazyTensor's matrix-vector products, or a
Genred called in a loop, compile once. Arrays go to the library without a copy
when they already are C-contiguous in the kernel's dtype; anything else is
converted once per call.
"""
import collections
import ctypes

import numpy as np

from . import _lib
from ._lib import lib, LOCK

DTYPES = {np.dtype(np.float32): _lib.KF_FLOAT32, np.dtype(np.float64): _lib.KF_FLOAT64}
JITS = {"auto": 0, "tcc": 1, "reference": 2, "cc": 3}
# pykeops spells the backends "CPU", "GPU" and "auto"; kforge's names work too.
BACKENDS = {"auto": 0, "cpu": 1, "gpu": 2, "cuda": 2}
# pykeops' sum_scheme names, and kforge's (docs/formulas.md).
SUM_SCHEMES = {"auto": 0, "block": 1, "block_sum": 1, "direct": 2, "direct_sum": 2, "f64": 3,
               "kahan": 4, "kahan_scheme": 4}
CATS = {0: "i", 1: "j", 2: "parameter"}


def _enum(table, value, what):
    if value is None:
        return 0
    key = str(value).lower()
    if key not in table:
        raise ValueError("kforge: unknown %s %r (one of %s)" % (what, value, ", ".join(sorted(table))))
    return table[key]


def float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise TypeError("kforge: dtype %s is not supported (float32 or float64)" % dt)
    return dt


class Kernel:
    """One compiled kernel; see kf_compile in include/kforge.h."""

    def __init__(self, formula, aliases, reduction, axis, dtype, k=0, formula2=None,
                 sum_scheme="auto", jit=None, backend="auto"):
        self.formula, self.aliases = formula, list(aliases)
        self.reduction, self.axis, self.dtype = reduction, axis, float_dtype(dtype)
        o = _lib.CompileOpts()
        lib.kf_compile_opts_init(ctypes.byref(o))
        o.k = int(k or 0)
        o.formula2 = formula2.encode() if formula2 is not None else None
        o.sum_scheme = _enum(SUM_SCHEMES, sum_scheme, "sum_scheme")
        o.jit = _enum(JITS, jit, "jit engine")
        o.backend = _enum(BACKENDS, backend, "backend")
        al = _lib.cstrings(self.aliases)
        self._h = None
        with LOCK:
            h = lib.kf_compile(_lib.ctx(), formula.encode(), al, len(self.aliases),
                               reduction.encode() if reduction else None, int(axis),
                               DTYPES[self.dtype], ctypes.byref(o))
            if not h:
                raise _lib.fail(lib.kf_status_of(_lib.ctx()), [formula, formula2] + self.aliases)
        self._h = h
        self.nargs = lib.kf_kernel_nargs(h)
        self.vars = []  # (category or -1, dim) per variable index
        for v in range(self.nargs):
            cat, dim = ctypes.c_int(), ctypes.c_int64()
            lib.kf_kernel_var(h, v, ctypes.byref(cat), ctypes.byref(dim))
            self.vars.append((cat.value, dim.value))
        self.out_dim = lib.kf_kernel_out_dim(h)
        self.index_dim = lib.kf_kernel_index_dim(h)
        self.formula_dim = lib.kf_kernel_formula_dim(h)
        self.canonical = lib.kf_kernel_canonical(h).decode()

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        _lib.release(lib.kf_kernel_free, h)

    def engine(self):
        """What the last run ran ("cc", "tcc", "reference", "cuda"), as kf_kernel_engine says."""
        return lib.kf_kernel_engine(self._h).decode()

    def stats(self):
        """kf_compile_stats as a dict (cache: "unused", "hit", "miss" or "disabled")."""
        st = _lib.CompileStats()
        _lib.check(lib.kf_kernel_stats(self._h, ctypes.byref(st)))
        d = {name: getattr(st, name) for name, _ in st._fields_}
        d["cache"] = ("unused", "hit", "miss", "disabled")[st.cache]
        d["cache_entry"] = st.cache_entry.decode() if st.cache_entry else None
        return d

    def bind(self, args, names=None):
        """The arrays of a run as (M, N, [array or None per variable]): shapes checked
        against the variable table, converted only where they are not already C-contiguous
        in the kernel's dtype."""
        if len(args) != self.nargs:
            raise ValueError("kforge: the formula has %d variables (%s); %d arrays given"
                             % (self.nargs, ", ".join(self._describe(v) for v in range(self.nargs)),
                                len(args)))
        sizes = {0: None, 1: None}
        bound = []
        for v, a in enumerate(args):
            cat, dim = self.vars[v]
            if cat < 0:
                bound.append(None)
                continue
            a = as_array(a, self.dtype, "argument %d (%s)" % (v, self._describe(v)))
            if cat == 2:
                if a.size != dim or a.ndim > 2 or (a.ndim == 2 and a.shape[0] != 1):
                    raise ValueError("kforge: argument %d is a parameter of dim %d; got shape %s"
                                     % (v, dim, a.shape))
                bound.append(a.reshape(dim))
                continue
            if not (a.ndim == 2 and a.shape[1] == dim or a.ndim == 1 and dim == 1):
                raise ValueError("kforge: argument %d (%s) must have shape (n, %d)%s; got %s"
                                 % (v, self._describe(v), dim, " or (n,)" if dim == 1 else "",
                                    a.shape))
            n = a.shape[0]
            if sizes[cat] is not None and sizes[cat][0] != n:
                raise ValueError("kforge: argument %d has %d rows but argument %d, also %s-indexed, "
                                 "has %d" % (v, n, sizes[cat][1], CATS[cat], sizes[cat][0]))
            sizes[cat] = sizes[cat] or (n, v)
            bound.append(a.reshape(n, dim))
        for cat in (0, 1):
            if sizes[cat] is None:
                raise ValueError("kforge: the formula has no %s-variable, so the number of %s "
                                 "points is unknown" % (CATS[cat], CATS[cat]))
        return sizes[0][0], sizes[1][0], bound

    def _describe(self, v):
        cat, dim = self.vars[v]
        return "unused" if cat < 0 else "%s, dim %d" % (CATS[cat], dim)

    def run(self, args, ranges=None, out=None):
        """Runs on the arrays `args` (one per variable index); returns (values, indices),
        each a (rows, dim) array or None when the reduction has none."""
        M, N, bound = self.bind(args)
        rows = M if self.axis == 1 else N
        vals = idx = None
        if self.out_dim:
            vals = out_array(out, (rows, self.out_dim), self.dtype)
        if self.index_dim:
            idx = np.empty((rows, self.index_dim), np.int64)
        ptrs = (ctypes.c_void_p * max(1, self.nargs))()
        for v, a in enumerate(bound):
            ptrs[v] = a.ctypes.data if a is not None and a.size else None
        vp = vals.ctypes.data if vals is not None else None
        ip = idx.ctypes.data if idx is not None else None
        with LOCK:
            if ranges is None:
                rc = lib.kf_run(self._h, M, N, ptrs, self.nargs, vp, ip)
            else:
                rg, keep = ranges_struct(ranges)
                rc = lib.kf_run_ranges(self._h, M, N, ptrs, self.nargs, ctypes.byref(rg), vp, ip)
                del keep
            _lib.check(rc)
        return vals, idx


def as_array(a, dtype, what):
    """a as an array of dtype, the same object when it already is one: floating input only
    (a silent cast from integers or to another precision would hide a mistake)."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a, dtype=dtype)
    if a.dtype != dtype:
        raise TypeError("kforge: %s is %s, the kernel is %s (convert it with .astype)"
                        % (what, a.dtype, dtype))
    return np.ascontiguousarray(a)


def out_array(out, shape, dtype):
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray) or out.dtype != dtype or not out.flags.c_contiguous \
            or out.size != shape[0] * shape[1]:
        raise ValueError("kforge: out must be a C-contiguous %s array of %d x %d values"
                         % (dtype, shape[0], shape[1]))
    return out.reshape(shape)


RANGE_NAMES = ("ranges_i", "slices_i", "redranges_j", "ranges_j", "slices_j", "redranges_i")


def ranges_struct(ranges):
    """kf_ranges over the six arrays of KeOps' layout; returns it and the arrays it points to."""
    if len(ranges) != 6:
        raise ValueError("kforge: ranges is a tuple of 6 arrays (%s), as from_matrix returns; "
                         "got %d" % (", ".join(RANGE_NAMES), len(ranges)))
    arrs = []
    for name, r in zip(RANGE_NAMES, ranges):
        r = np.ascontiguousarray(r, dtype=np.int64)
        pair = name.startswith(("ranges", "redranges"))
        if (pair and (r.ndim != 2 or r.shape[1] != 2)) or (not pair and r.ndim != 1):
            raise ValueError("kforge: ranges' %s must have shape %s; got %s"
                             % (name, "(n, 2)" if pair else "(n,)", r.shape))
        arrs.append(r)
    p = lambda r: r.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
    rg = _lib.Ranges(nci=len(arrs[0]), ranges_i=p(arrs[0]), slices_i=p(arrs[1]),
                     nredj=len(arrs[2]), redranges_j=p(arrs[2]),
                     ncj=len(arrs[3]), ranges_j=p(arrs[3]), slices_j=p(arrs[4]),
                     nredi=len(arrs[5]), redranges_i=p(arrs[5]))
    if len(arrs[1]) != rg.nci or len(arrs[4]) != rg.ncj:
        raise ValueError("kforge: ranges' slices_i (slices_j) must have one entry per range of "
                         "ranges_i (ranges_j)")
    return rg, arrs


_table = collections.OrderedDict()
_TABLE_MAX = 256


def kernel(formula, aliases, reduction, axis, dtype, k=0, formula2=None, sum_scheme="auto",
           jit=None, backend="auto"):
    """The Kernel for these arguments, compiled once and then kept (the most recent 256)."""
    key = (formula, tuple(aliases), reduction, axis, np.dtype(dtype), k, formula2, sum_scheme,
           jit, str(backend).lower())
    with LOCK:
        kern = _table.get(key)
        if kern is None:
            kern = Kernel(formula, aliases, reduction, axis, dtype, k, formula2, sum_scheme, jit,
                          backend)
            _table[key] = kern
            if len(_table) > _TABLE_MAX:
                _table.popitem(last=False)
        else:
            _table.move_to_end(key)
        return kern


def result(vals, idx):
    if vals is not None and idx is not None:
        return vals, idx
    return vals if vals is not None else idx


class Genred:
    """pykeops.numpy.Genred: a reduction of `formula` over one axis of the (M, N) pairs.

    Genred(formula, aliases, reduction_op="Sum", axis=0, dtype=None, opt_arg=None,
           formula2=None, ...)(*args, backend="auto", device_id=-1, ranges=None, out=None)

    axis=1 reduces over j (M rows out), axis=0 over i (N rows out), as in KeOps. The
    arrays are NumPy, one per alias in order (i- and j-variables (n, dim), parameters
    (dim,)), all float32 or all float64. The result is (rows, values per row); index
    reductions (ArgMin, ArgKMin, ...) give int64 indices, and the reductions with both
    (Min_ArgMin, KMin_ArgKMin, ...) a tuple (values, indices). opt_arg is K of the KMin
    family. The formula and reduction are checked here: errors raise FormulaError with
    the column."""

    def __init__(self, formula, aliases, reduction_op="Sum", axis=0, dtype=None, opt_arg=None,
                 formula2=None, cuda_type=None, dtype_acc="auto", use_double_acc=False,
                 sum_scheme="auto", enable_chunks=True, rec_multVar_highdim=False, jit=None):
        if axis not in (0, 1):
            raise ValueError("kforge: axis must be 0 (reduce over i) or 1 (reduce over j)")
        self.formula, self.aliases = formula, list(aliases)
        # pykeops' Genred reads LogSumExp with a formula2 as the weighted log-sum-exp,
        # log sum_j exp(f) g: kforge's LogSumExpWeight (as LazyTensor.logsumexp(weight=)).
        if reduction_op == "LogSumExp" and formula2 is not None:
            reduction_op = "LogSumExpWeight"
        self.reduction_op, self.axis, self.opt_arg, self.formula2 = reduction_op, axis, opt_arg, formula2
        self.dtype = dtype if dtype is not None else cuda_type
        if use_double_acc or str(dtype_acc) == "float64":
            sum_scheme = "f64"
        self.sum_scheme, self.jit = sum_scheme, jit
        _enum(SUM_SCHEMES, sum_scheme, "sum_scheme")
        # Every error of the formula, the aliases and the reduction shows now, before any data:
        # the reference engine compiles no code.
        chk = Kernel(formula, self.aliases, reduction_op, axis, self.dtype or np.float32,
                     opt_arg or 0, formula2, jit="reference")
        self.nargs = chk.nargs

    def __call__(self, *args, backend="auto", device_id=-1, ranges=None, out=None):
        dtype = self.dtype or _args_dtype(args)
        kern = kernel(self.formula, self.aliases, self.reduction_op, self.axis, dtype,
                      self.opt_arg or 0, self.formula2, self.sum_scheme, self.jit, backend)
        return result(*kern.run(args, ranges=ranges, out=out))


def _args_dtype(args):
    dts = {a.dtype for a in args if isinstance(a, np.ndarray)}
    if len(dts) > 1:
        raise TypeError("kforge: the arrays mix dtypes (%s); use one of float32, float64"
                        % ", ".join(sorted(str(d) for d in dts)))
    return float_dtype(dts.pop() if dts else np.float32)
