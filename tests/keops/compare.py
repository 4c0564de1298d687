"""compare.py -- make test-keops' driver: every case of a corpus through both engines.

    python compare.py BUILD CORPUS [LINE ...]
    python compare.py --parse CORPUS


Each case (tests/keops/corpus.txt says the format) runs through pykeops' Genred
on its CPU engine and through kforge's Genred (python/kforge over
BUILD/libkforge.so.0) on the same random inputs, and gets one line:

    match                 the outputs agree (values within the dtype's tolerance,
                          the same non-finite entries, indices equal or tied)
    differ                they do not (the largest relative error, or the first
                          index that is neither equal nor a tie)
    known difference      a difference docs/formulas.md ("Differences from KeOps")
                          lists, that the case expects
    open difference       a difference the case expects and marks as open
    unsupported-in-kforge kforge refuses the formula (the message follows)
    unsupported-in-keops  pykeops refuses it (its first line follows)

then "K of N formulas match" and a count of the rest. The exit status is 1 when
a case ends otherwise than its `expect` says (default: match), else 0. LINE
numbers run those cases of the corpus only. --parse reads the corpus and draws
every case's inputs without either engine (the test suite's check: numpy only).

Relative error is max |kforge - keops| / max |keops| over a case's finite
values (so a sum is judged against its size, not each near-cancelled row).
Index outputs (ArgMin, KMin_ArgKMin, ...) may differ where two points tie: the
formula is evaluated by kforge at both pairs, and equal values within the
tolerance are a tie. pykeops is imported with its kernels built under
BUILD/keops-test/keops (g++ at the first call of each formula: seconds each,
then cached), kforge with its cache under BUILD/keops-test/kforge-cache.
"""
import contextlib
import io
import os
import re
import sys
import warnings
import zlib

import numpy as np

TOL = {"float32": 1e-4, "float64": 1e-10}
M_DEFAULT, N_DEFAULT = 40, 30
EXPECTS = ("match", "known", "open", "unsupported-in-kforge", "unsupported-in-keops")


class Case:
    """One corpus line: formula ; aliases ; reduction ; axis [; key=value ...]."""

    def __init__(self, lineno, text):
        self.lineno, self.text = lineno, text
        fields = [f.strip() for f in text.split(";")]
        if len(fields) < 4:
            raise ValueError("line %d: want formula ; aliases ; reduction ; axis [; key=value ...]"
                             % lineno)
        self.formula, aliases, self.reduction, axis = fields[:4]
        self.aliases = aliases.split()
        self.axis = int(axis)
        if self.axis not in (0, 1):
            raise ValueError("line %d: axis %r is not 0 or 1" % (lineno, axis))
        self.opts = {}
        for f in fields[4:]:
            key, eq, value = f.partition("=")
            if not eq:
                raise ValueError("line %d: option %r is not key=value" % (lineno, f))
            self.opts[key.strip()] = value.strip()
        known = {"k", "f2", "dtype", "keops", "M", "N", "data", "ranges", "expect", "why"}
        for key in self.opts:
            if key not in known and not key.startswith("data."):
                raise ValueError("line %d: unknown option %r" % (lineno, key))
        self.k = int(self.opts["k"]) if "k" in self.opts else None
        self.f2 = self.opts.get("f2")
        self.dtype = self.opts.get("dtype", "float64")
        if self.dtype not in TOL:
            raise ValueError("line %d: dtype %r is not float32 or float64" % (lineno, self.dtype))
        self.keops_red = self.opts.get("keops", self.reduction)
        self.expect = self.opts.get("expect", "match")
        if self.expect not in EXPECTS:
            raise ValueError("line %d: expect=%s is not one of %s" % (lineno, self.expect,
                                                                      ", ".join(EXPECTS)))
        self.vars = [parse_alias(lineno, a) for a in self.aliases]

    def label(self):
        s = "%s, %s axis %d" % (self.formula, self.reduction, self.axis)
        if self.f2:
            s += ", formula2 %s" % self.f2
        if self.k:
            s += ", K=%d" % self.k
        return s + (", float32" if self.dtype == "float32" else "")


ALIAS = re.compile(r"^(\w+)=(?:(Vi|Vj|Pm)\((\d+),(\d+)\)|Var\((\d+),(\d+),([012])\))$")


def parse_alias(lineno, a):
    m = ALIAS.match(a)
    if not m:
        raise ValueError("line %d: alias %r is not name=Vi(i,d), Vj(i,d), Pm(i,d) or Var(i,d,c)"
                         % (lineno, a))
    if m.group(2):
        cat = {"Vi": 0, "Vj": 1, "Pm": 2}[m.group(2)]
        return m.group(1), int(m.group(3)), int(m.group(4)), cat
    return m.group(1), int(m.group(5)), int(m.group(6)), int(m.group(7))


def sample(rng, spec, shape):
    """Random values as spec says: normal (default), u:LO:HI (uniform), int:LO:HI
    (integers LO..HI, so that ties happen), sorted:LO:HI (uniform, ascending: knots),
    nan (normal with NaN at a few places)."""
    kind, _, rest = spec.partition(":")
    lim = [float(v) for v in rest.split(":")] if rest else []
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "u":
        return rng.uniform(lim[0], lim[1], shape)
    if kind == "int":
        return rng.integers(int(lim[0]), int(lim[1]) + 1, shape).astype(np.float64)
    if kind == "sorted":
        return np.sort(rng.uniform(lim[0], lim[1], shape).ravel()).reshape(shape)
    if kind == "nan":
        a = rng.standard_normal(shape)
        flat = a.reshape(-1)
        flat[rng.choice(flat.size, max(1, flat.size // 8), replace=False)] = np.nan
        return a
    raise ValueError("data spec %r: want normal, u:LO:HI, int:LO:HI, sorted:LO:HI or nan" % spec)


def inputs(case):
    """The arrays, one per variable index, from a seed fixed by the case's text."""
    rng = np.random.default_rng(zlib.crc32(case.text.encode()))
    M = int(case.opts.get("M", M_DEFAULT))
    N = int(case.opts.get("N", N_DEFAULT))
    byidx = {}
    for name, idx, dim, cat in case.vars:
        spec = case.opts.get("data." + name, case.opts.get("data", "normal"))
        shape = (dim,) if cat == 2 else ((M, dim) if cat == 0 else (N, dim))
        byidx[idx] = sample(rng, spec, shape).astype(case.dtype)
    if sorted(byidx) != list(range(len(byidx))):
        raise ValueError("line %d: variable indices %s are not 0..n-1" % (case.lineno, sorted(byidx)))
    return [byidx[i] for i in range(len(byidx))], M, N


def ranges_of(case, M, N):
    """ranges=half: the first half of the i-rows (axis 1) or j-rows (axis 0) reduce over
    nothing, the second half over every point: KeOps' six-array block-sparse layout."""
    if case.opts.get("ranges") != "half":
        raise ValueError("line %d: ranges=%s: only ranges=half is known"
                         % (case.lineno, case.opts.get("ranges")))
    outer, inner = (M, N) if case.axis == 1 else (N, M)
    h = outer // 2
    i64 = lambda a: np.array(a, dtype=np.int64)
    half = (i64([[0, h], [h, outer]]), i64([0, 1]), i64([[0, inner]]))
    full = (i64([[0, inner]]), i64([1]), i64([[h, outer]]))
    return half + full if case.axis == 1 else full + half


def flat(out):
    """An engine's result as a list of 2-D arrays (rows, values): pykeops gives KMin-like
    outputs as (rows, K, D) or (rows, K), kforge as (rows, K*D)."""
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o).reshape(np.asarray(o).shape[0], -1) for o in outs]


def first_line(e):
    s = str(e).strip().splitlines()
    return "%s: %s" % (type(e).__name__, s[0] if s else "")


class Engines:
    def __init__(self, build):
        build = os.path.abspath(build)
        os.environ.setdefault("KFORGE_LIB", os.path.join(build, "libkforge.so.0"))
        os.environ.setdefault("KFORGE_CACHE_DIR", os.path.join(build, "keops-test", "kforge-cache"))
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        sys.path.insert(0, os.path.join(root, "python"))
        import kforge
        self.kforge = kforge
        # pykeops prints its banner (no CUDA here, and so on) at import: not part of the report.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import pykeops
            import pykeops.numpy
            pykeops.set_verbose(False)
            folder = os.path.join(build, "keops-test", "keops")
            os.makedirs(folder, exist_ok=True)
            pykeops.set_build_folder(folder)
        self.pykeops = pykeops

    def run_kforge(self, case, args, ranges):
        g = self.kforge.Genred(case.formula, case.aliases, reduction_op=case.reduction,
                               axis=case.axis, opt_arg=case.k, formula2=case.f2)
        return g(*args, ranges=ranges)

    def run_keops(self, case, args, ranges):
        g = self.pykeops.numpy.Genred(case.formula, case.aliases, reduction_op=case.keops_red,
                                      axis=case.axis, opt_arg=case.k, formula2=case.f2)
        with np.errstate(all="ignore"):
            return g(*args, backend="CPU", ranges=ranges)

    def pair_value(self, case, args, outer, inner, comp):
        """The formula's component comp at the pair (outer, inner): kforge's Sum over one point."""
        sel = []
        for (name, idx, dim, cat) in sorted(case.vars, key=lambda v: v[1]):
            a = args[idx]
            if cat == 2:
                sel.append(a)
                continue
            row = outer if cat == (0 if case.axis == 1 else 1) else inner
            sel.append(np.ascontiguousarray(a[row:row + 1]))
        g = self.kforge.Genred(case.formula, case.aliases, reduction_op="Sum", axis=case.axis)
        return float(np.asarray(g(*sel)).reshape(-1)[comp])


def compare(eng, case, args, kf, ko):
    """(ok, detail): whether kforge's outputs kf agree with keops' ko."""
    if len(kf) != len(ko):
        return False, "kforge gives %d outputs, keops %d" % (len(kf), len(ko))
    tol = TOL[case.dtype]
    worst, ties = 0.0, 0
    for a, b in zip(kf, ko):
        if a.shape != b.shape:
            return False, "shape %s (kforge) vs %s (keops)" % (a.shape, b.shape)
        if np.issubdtype(b.dtype, np.integer) or np.issubdtype(a.dtype, np.integer):
            ok, why = compare_indices(eng, case, args, a, b, tol)
            if not ok:
                return False, why
            ties += why
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        fa, fb = np.isfinite(a64), np.isfinite(b64)
        nonfin = ~(fa & fb)
        if nonfin.any():
            same = (np.isnan(a64) & np.isnan(b64)) | (a64 == b64)
            bad = np.argwhere(nonfin & ~same)
            if len(bad):
                r, c = bad[0]
                return False, "row %d col %d: %r (kforge) vs %r (keops); %d such entries" % (
                    r, c, float(a64[r, c]), float(b64[r, c]), len(bad))
        both = fa & fb
        if both.any():
            scale = np.max(np.abs(b64[both]))
            err = np.max(np.abs(a64[both] - b64[both])) / (scale if scale > 0 else 1.0)
            if err > tol:
                r, c = np.argwhere(both & (np.abs(a64 - b64) == np.max(np.abs(a64 - b64)[both])))[0]
                return False, "max rel error %.2e > %.0e (row %d col %d: %r vs %r)" % (
                    err, tol, r, c, float(a64[r, c]), float(b64[r, c]))
            worst = max(worst, err)
    return True, "max rel error %.1e%s" % (worst, ", %d index ties" % ties if ties else "")


def compare_indices(eng, case, args, a, b, tol):
    """(True, number of ties) when the indices agree where equal, or where the formula ties
    at both (evaluated by kforge); else (False, the first disagreement)."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    diff = np.argwhere(a != b)
    D = None
    for r, c in diff:
        ia, ib = int(a[r, c]), int(b[r, c])
        if D is None:
            D = eng.kforge.Kernel(case.formula, case.aliases, "Sum", case.axis,
                                  case.dtype).out_dim
        if ia < 0 or ib < 0:
            return False, "row %d col %d: index %d (kforge) vs %d (keops)" % (r, c, ia, ib)
        comp = int(c) % D
        fa = eng.pair_value(case, args, int(r), ia, comp)
        fb = eng.pair_value(case, args, int(r), ib, comp)
        if not (fa == fb or abs(fa - fb) <= tol * max(abs(fa), abs(fb), 1.0)):
            return False, "row %d col %d: index %d (kforge, f = %r) vs %d (keops, f = %r)" % (
                r, c, ia, fa, ib, fb)
    return True, len(diff)


def run_case(eng, case):
    """(outcome, detail) with outcome one of match, differ, unsupported-in-kforge,
    unsupported-in-keops."""
    args, M, N = inputs(case)
    ranges = ranges_of(case, M, N) if "ranges" in case.opts else None
    try:
        kf = flat(eng.run_kforge(case, args, ranges))
    except (eng.kforge.KforgeError, NotImplementedError) as e:
        return "unsupported-in-kforge", first_line(e)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ko = flat(eng.run_keops(case, args, ranges))
    except Exception as e:  # pykeops raises whatever its formula parser or g++ hit
        return "unsupported-in-keops", first_line(e)
    ok, detail = compare(eng, case, args, kf, ko)
    return ("match" if ok else "differ"), detail


def read_corpus(path):
    cases = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if s and not s.startswith("#"):
                cases.append(Case(n, s))
    return cases


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: compare.py BUILD CORPUS [LINE ...] | --parse CORPUS\n")
        return 2
    if argv[1] == "--parse":
        cases = read_corpus(argv[2])
        for case in cases:
            args, M, N = inputs(case)
            if "ranges" in case.opts:
                ranges_of(case, M, N)
        print("%d cases" % len(cases))
        return 0
    build, corpus = argv[1], argv[2]
    cases = read_corpus(corpus)
    if len(argv) > 3:
        want = {int(a) for a in argv[3:]}
        cases = [c for c in cases if c.lineno in want]
    warnings.simplefilter("ignore")
    eng = Engines(build)
    print("test-keops: %d cases of %s; pykeops %s (CPU), kforge %s (%s)" % (
        len(cases), corpus, eng.pykeops.__version__, eng.kforge.library_version,
        eng.kforge.library_path))
    counts = {}
    unexpected = []
    for case in cases:
        outcome, detail = run_case(eng, case)
        shown = outcome
        if outcome == "differ" and case.expect == "known":
            shown = "known difference (docs/formulas.md)"
        elif outcome == "differ" and case.expect == "open":
            shown = "open difference (see the corpus)"
        good = outcome == case.expect or (outcome == "differ" and case.expect in ("known", "open"))
        if not good:
            shown = "FAIL %s (expected %s)" % (outcome, case.expect)
            unexpected.append(case)
        counts[shown if good else "unexpected"] = counts.get(shown if good else "unexpected", 0) + 1
        why = case.opts.get("why")
        print("%-4d %-38s %s: %s%s" % (case.lineno, shown, case.label(), detail,
                                       " [%s]" % why if why and outcome != "match" else ""))
        sys.stdout.flush()
    nmatch = counts.get("match", 0)
    rest = ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()) if k != "match")
    print("%d of %d formulas match%s" % (nmatch, len(cases), "; " + rest if rest else ""))
    if unexpected:
        print("test-keops: FAILED: corpus lines %s" % " ".join(str(c.lineno) for c in unexpected))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
