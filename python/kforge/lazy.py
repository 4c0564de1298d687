"""lazy.py -- LazyTensor: symbolic (M, N, D) arrays that build formula strings.

A subset of pykeops.numpy.LazyTensor. Arithmetic, `**` and the math methods
build the formula text (in KeOps' own spelling, so print() shows what pykeops
shows); a reduction over dim 0 or 1 (`sum`, `min`, `argKmin`, `logsumexp`, ...)
or a product `K @ v` numbers the variables in order of first appearance,
compiles the formula once (genred.kernel's table) and runs it. `shape`,
`dtype`, `matvec` and `rmatvec` make a scalar LazyTensor a matrix for scipy's
aslinearoperator, and `.ranges` (from cluster.from_matrix) makes every
reduction block-sparse.

Inside a formula under construction a variable is a placeholder "\\x01uid\\x01"
(uid: a process-wide counter), replaced by Var(index,dim,cat) when rendered.
"""
import itertools
import math
import re

import numpy as np

from . import genred

_uids = itertools.count()
_PH = re.compile("\x01([0-9]+)\x01")


class _Var:
    """One array bound to a formula: (n, dim) rows of an i- or j-variable, or a parameter."""

    __slots__ = ("uid", "array", "cat", "dim")

    def __init__(self, array, cat, dim):
        self.uid, self.array, self.cat, self.dim = next(_uids), array, cat, dim

    def ph(self):
        return "\x01%d\x01" % self.uid


def _union(*lists):
    seen, out = set(), []
    for vs in lists:
        for v in vs:
            if v.uid not in seen:
                seen.add(v.uid)
                out.append(v)
    return tuple(out)


def _merge(a, b, what):
    if a is not None and b is not None and a != b:
        raise ValueError("kforge: LazyTensors with %d and %d %s-points cannot be combined"
                         % (a, b, what))
    return a if a is not None else b


def _literal(c):
    """A Python number as formula text: IntCst for integers, a decimal literal otherwise."""
    if isinstance(c, (bool, np.bool_)):
        c = int(c)
    if isinstance(c, (int, np.integer)):
        return "IntCst(%d)" % int(c)
    c = float(c)
    if not math.isfinite(c):
        raise ValueError("kforge: the constant %r cannot be written in a formula" % c)
    text = repr(abs(c))
    return "Minus(%s)" % text if c < 0 else text


class LazyTensor:
    """LazyTensor(x, axis=None): x of shape (M, 1, D) is an i-variable, (1, N, D) a
    j-variable, (D,) or (1, 1, D) a parameter; a 2-D (n, D) or 1-D (n,) array needs
    axis=0 (i) or axis=1 (j); a Python number is a constant. Arrays must be float32 or
    float64, and are used without a copy when C-contiguous."""

    # NumPy's operators give way (`array * lazy` calls our __rmul__) instead of
    # broadcasting over us as over an object.
    __array_ufunc__ = None

    def __init__(self, x=None, axis=None):
        self.ranges = None
        self.backend = "auto"
        if x is None:  # filled by _make
            return
        if isinstance(x, (int, float, np.number, bool)) and not isinstance(x, np.ndarray):
            self._set(_literal(x), (), 1, None, None, None)
            return
        a = np.asarray(x)
        if a.ndim == 0:
            self._set(_literal(a.item()), (), 1, None, None, None)
            return
        dt = genred.float_dtype(a.dtype) if a.dtype.kind == "f" else None
        if dt is None:
            raise TypeError("kforge: LazyTensor needs a float32 or float64 array, got %s" % a.dtype)
        if a.ndim == 3:
            if a.shape[0] == 1 and a.shape[1] == 1:
                cat = 2
            elif a.shape[1] == 1:
                cat = 0
            elif a.shape[0] == 1:
                cat = 1
            else:
                raise ValueError("kforge: a 3-D array is (M, 1, D), (1, N, D) or (1, 1, D); got %s"
                                 % (a.shape,))
            n, dim = (a.shape[0] if cat == 0 else a.shape[1]), a.shape[2]
        elif a.ndim == 2:
            if axis not in (0, 1):
                raise ValueError("kforge: a 2-D array needs axis=0 (i-variable) or axis=1 "
                                 "(j-variable); got axis=%r" % (axis,))
            cat, (n, dim) = axis, a.shape
        elif a.ndim == 1:
            if axis is None:
                cat, n, dim = 2, 1, a.shape[0]
            elif axis in (0, 1):
                cat, n, dim = axis, a.shape[0], 1
            else:
                raise ValueError("kforge: axis must be None, 0 or 1; got %r" % (axis,))
        else:
            raise ValueError("kforge: LazyTensor takes arrays of at most 3 dims; got %s" % (a.shape,))
        arr = np.ascontiguousarray(a).reshape((dim,) if cat == 2 else (n, dim))
        v = _Var(arr, cat, dim)
        self._set(v.ph(), (v,), dim, n if cat == 0 else None, n if cat == 1 else None, dt)

    def _set(self, t, vars, dim, ni, nj, dtype):
        self._t, self._vars, self.ndim, self.ni, self.nj, self._dtype = t, vars, dim, ni, nj, dtype

    @classmethod
    def _make(cls, t, vars, dim, ni, nj, dtype, parents):
        z = cls()
        z._set(t, vars, dim, ni, nj, dtype)
        for p in parents:
            if p.ranges is not None and z.ranges is None:
                z.ranges = p.ranges
            if p.backend != "auto":
                z.backend = p.backend
        return z

    # ---- what it is ----
    @property
    def dtype(self):
        return self._dtype

    @property
    def shape(self):
        s = (self.ni or 1, self.nj or 1)
        return s if self.ndim == 1 else s + (self.ndim,)

    def _render(self, extra=(), templates=None):
        index = {v.uid: (k, v) for k, v in enumerate(_union(self._vars, extra))}

        def var(m):
            k, v = index[int(m.group(1))]
            return "Var(%d,%d,%d)" % (k, v.dim, v.cat)
        return [_PH.sub(var, t) for t in (templates or [self._t])]

    @property
    def formula(self):
        return self._render()[0]

    def __str__(self):
        return "kforge LazyTensor\nformula: %s\nshape: %s" % (self.formula, self.shape)

    __repr__ = __str__

    # ---- building formulas ----
    @staticmethod
    def _lift(x):
        return x if isinstance(x, LazyTensor) else LazyTensor(x)

    def _unary(self, op, dim=None, fmt="%s(%s)"):
        return self._make(fmt % (op, self._t), self._vars, self.ndim if dim is None else dim,
                          self.ni, self.nj, self._dtype, [self])

    def _binary(self, other, fmt, dim=None, swap=False):
        a, b = self, self._lift(other)
        if swap:
            a, b = b, a
        if dim is None:
            if a.ndim != b.ndim and 1 not in (a.ndim, b.ndim):
                raise ValueError("kforge: dims %d and %d do not broadcast (equal, or one of them 1)"
                                 % (a.ndim, b.ndim))
            dim = max(a.ndim, b.ndim)
        if a._dtype is not None and b._dtype is not None and a._dtype != b._dtype:
            raise TypeError("kforge: LazyTensors of %s and %s cannot be combined" % (a._dtype, b._dtype))
        return self._make(fmt.format(a._t, b._t), _union(a._vars, b._vars), dim,
                          _merge(a.ni, b.ni, "i"), _merge(a.nj, b.nj, "j"),
                          a._dtype or b._dtype, [a, b])

    def __add__(self, o):
        return self._binary(o, "({} + {})")

    def __radd__(self, o):
        return self._binary(o, "({} + {})", swap=True)

    def __sub__(self, o):
        return self._binary(o, "({} - {})")

    def __rsub__(self, o):
        return self._binary(o, "({} - {})", swap=True)

    def __mul__(self, o):
        return self._binary(o, "({} * {})")

    def __rmul__(self, o):
        return self._binary(o, "({} * {})", swap=True)

    def __truediv__(self, o):
        return self._binary(o, "({} / {})")

    def __rtruediv__(self, o):
        return self._binary(o, "({} / {})", swap=True)

    def __neg__(self):
        return self._unary("Minus")

    def __pos__(self):
        return self

    def __abs__(self):
        return self._unary("Abs")

    def __pow__(self, e):
        """As pykeops: 2 is Square, other integers Pow, 0.5 Sqrt, -0.5 Rsqrt, other numbers
        and LazyTensors Powf."""
        if isinstance(e, LazyTensor):
            return self._binary(e, "Powf({}, {})")
        if isinstance(e, (int, np.integer)) or (isinstance(e, (float, np.floating)) and float(e).is_integer()):
            e = int(e)
            return self._unary("Square") if e == 2 else self._make(
                "Pow(%s,%d)" % (self._t, e), self._vars, self.ndim, self.ni, self.nj, self._dtype, [self])
        if e == 0.5:
            return self._unary("Sqrt")
        if e == -0.5:
            return self._unary("Rsqrt")
        return self._binary(float(e), "Powf({}, {})")

    def __or__(self, o):
        """(a | b): the scalar product of two vectors of one dim."""
        b = self._lift(o)
        if self.ndim != b.ndim:
            raise ValueError("kforge: (a | b) needs equal dims; got %d and %d" % (self.ndim, b.ndim))
        return self._binary(b, "({} | {})", dim=1)

    def __ror__(self, o):
        return self._lift(o).__or__(self)

    def sqdist(self, o):
        return self._binary(o, "SqDist({}, {})", dim=1)

    def weightedsqnorm(self, s):
        return self._binary(s, "WeightedSqNorm({}, {})", dim=1, swap=True)

    def weightedsqdist(self, o, s):
        return (self - o).weightedsqnorm(s)

    def elem(self, i):
        return self._make("Elem(%s,%d)" % (self._t, i), self._vars, 1, self.ni, self.nj,
                          self._dtype, [self])

    def extract(self, start, d):
        return self._make("Extract(%s,%d,%d)" % (self._t, start, d), self._vars, d, self.ni,
                          self.nj, self._dtype, [self])

    def concat(self, o):
        b = self._lift(o)
        return self._binary(b, "Concat({}, {})", dim=self.ndim + b.ndim)

    def __getitem__(self, key):
        """x[..., k] or x[:, :, k]: component k (Elem); a slice start:stop: Extract."""
        k = key[-1] if isinstance(key, tuple) else key
        if isinstance(k, (int, np.integer)):
            return self.elem(int(k) % self.ndim)
        if isinstance(k, slice) and k.step in (None, 1):
            start, stop, _ = k.indices(self.ndim)
            return self.extract(start, stop - start)
        raise IndexError("kforge: LazyTensor indexing takes one component k or a slice a:b "
                         "of the last dim")

    # ---- reductions ----
    def _reduce(self, red, dim, k=0, weight=None, backend=None, ranges=None, reshape_k=False):
        if dim not in (0, 1):
            raise ValueError("kforge: reduce over dim 0 (i) or 1 (j); got %r" % (dim,))
        if self.ni is None or self.nj is None:
            raise ValueError("kforge: a reduction needs both an i- and a j-variable in the "
                             "formula (this one has shape %s)" % (self.shape,))
        extra = weight._vars if weight is not None else ()
        if weight is not None:
            _merge(self.ni, weight.ni, "i")
            _merge(self.nj, weight.nj, "j")
        vars = _union(self._vars, extra)
        texts = self._render(extra, [self._t] + ([weight._t] if weight is not None else []))
        kern = genred.kernel(texts[0], [], red, dim, self._dtype, k,
                             texts[1] if weight is not None else None,
                             backend=backend or self.backend)
        vals, idx = kern.run([v.array for v in vars],
                             ranges=ranges if ranges is not None else self.ranges)
        if reshape_k:
            shape = (-1, k) if kern.formula_dim == 1 else (-1, k, kern.formula_dim)
            vals = vals.reshape(shape) if vals is not None else None
            idx = idx.reshape(shape) if idx is not None else None
        return genred.result(vals, idx)

    def _vector_or_reduce(self, op, red, axis, dim, kw):
        if dim is not None:
            axis = dim
        if axis in (-1, 2):
            return self._unary(op, dim=1)
        return self._reduce(red, axis, **kw)

    def sum(self, axis=-1, dim=None, **kw):
        """sum(dim=0 or 1): the reduction; sum() or sum(-1) (or 2): Sum of the components."""
        return self._vector_or_reduce("Sum", "Sum", axis, dim, kw)

    def min(self, axis=-1, dim=None, **kw):
        return self._vector_or_reduce("Min", "Min", axis, dim, kw)

    def max(self, axis=-1, dim=None, **kw):
        return self._vector_or_reduce("Max", "Max", axis, dim, kw)

    def argmin(self, axis=-1, dim=None, **kw):
        return self._vector_or_reduce("ArgMin", "ArgMin", axis, dim, kw)

    def argmax(self, axis=-1, dim=None, **kw):
        return self._vector_or_reduce("ArgMax", "ArgMax", axis, dim, kw)

    def min_argmin(self, axis=None, dim=None, **kw):
        return self._reduce("Min_ArgMin", dim if dim is not None else axis, **kw)

    def max_argmax(self, axis=None, dim=None, **kw):
        return self._reduce("Max_ArgMax", dim if dim is not None else axis, **kw)

    def Kmin(self, K, axis=None, dim=None, **kw):
        return self._reduce("KMin", dim if dim is not None else axis, k=K, reshape_k=True, **kw)

    def argKmin(self, K, axis=None, dim=None, **kw):
        return self._reduce("ArgKMin", dim if dim is not None else axis, k=K, reshape_k=True, **kw)

    def Kmin_argKmin(self, K, axis=None, dim=None, **kw):
        return self._reduce("KMin_ArgKMin", dim if dim is not None else axis, k=K,
                            reshape_k=True, **kw)

    def logsumexp(self, axis=None, dim=None, weight=None, **kw):
        if weight is not None:
            return self._reduce("LogSumExpWeight", dim if dim is not None else axis,
                                weight=self._lift(weight), **kw)
        return self._reduce("LogSumExp", dim if dim is not None else axis, **kw)

    def sumsoftmaxweight(self, weight, axis=None, dim=None, **kw):
        return self._reduce("SumSoftMaxWeight", dim if dim is not None else axis,
                            weight=self._lift(weight), **kw)

    # ---- a matrix for scipy ----
    def _product(self, v, cat):
        if self.ndim != 1:
            raise ValueError("kforge: K @ v needs a scalar LazyTensor (dim 1); this one has dim %d"
                             % self.ndim)
        n = self.nj if cat == 1 else self.ni
        v = np.asarray(v, dtype=self._dtype or np.float32)
        if v.ndim not in (1, 2) or v.shape[0] != n:
            raise ValueError("kforge: K @ v needs v of shape (%s,) or (%s, b); got %s"
                             % (n, n, v.shape))
        b = 1 if v.ndim == 1 else v.shape[1]
        w = _Var(np.ascontiguousarray(v).reshape(n, b), cat, b)
        prod = self._make("(%s * %s)" % (self._t, w.ph()), _union(self._vars, (w,)), b,
                          self.ni, self.nj, self._dtype or v.dtype, [self])
        out = prod._reduce("Sum", 1 if cat == 1 else 0)
        return out.reshape(-1) if v.ndim == 1 else out

    def __matmul__(self, v):
        """K @ v = sum_j K_ij v_j, for v of shape (N,) or (N, b), in one kernel run."""
        return self._product(v, 1)

    def matvec(self, v):
        return self._product(v, 1)

    def matmat(self, v):
        return self._product(v, 1)

    def rmatvec(self, v):
        """K^T v = sum_i K_ij v_i."""
        return self._product(v, 0)

    def rmatmat(self, v):
        return self._product(v, 0)


# The element-wise and vector-to-scalar methods, each one formula operation.
_UNARY = {"exp": "Exp", "log": "Log", "sin": "Sin", "cos": "Cos", "asin": "Asin", "acos": "Acos",
          "atan": "Atan", "sqrt": "Sqrt", "rsqrt": "Rsqrt", "abs": "Abs", "sign": "Sign",
          "step": "Step", "relu": "ReLU", "floor": "Floor", "square": "Square", "inv": "Inv",
          "xlogx": "XLogX", "sinxdivx": "SinXDivX", "normalize": "Normalize"}
_TO_SCALAR = {"sqnorm2": "SqNorm2", "norm2": "Norm2"}


def _method(op, scalar):
    def f(self):
        return self._unary(op, dim=1 if scalar else None)
    f.__name__ = op.lower()
    f.__doc__ = "%s(self) in the formula language." % op
    return f


for _n, _op in _UNARY.items():
    setattr(LazyTensor, _n, _method(_op, False))
for _n, _op in _TO_SCALAR.items():
    setattr(LazyTensor, _n, _method(_op, True))
LazyTensor.inverse = LazyTensor.inv
