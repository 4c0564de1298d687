"""_lib.py -- finds libkforge.so, declares the C API for ctypes, owns the one context.

Everything that touches the library goes through here: the structs mirror
include/kforge.h field for field (tests/test_lib.py compares their sizes and
offsets with the C compiler's), every call on the context holds LOCK (the C
rule: one thread at a time per context; ctypes drops the GIL during the call,
so other Python threads run meanwhile), and a failing status becomes an
exception carrying the context's message and the byte offset it names.
"""
import ctypes
import ctypes.util
import os
import threading

from .errors import error_for

c_int, c_int64, c_uint64, c_double = ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double
c_char_p, c_void_p, c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
P = ctypes.POINTER

# The library's major version this package speaks (the soname's number).
ABI_MAJOR = 0

KF_OK = 0
KF_FLOAT32, KF_FLOAT64 = 0, 1


class Options(ctypes.Structure):
    _fields_ = [("threads", c_int), ("verbose", c_int), ("log", c_void_p),
                ("log_user", c_void_p), ("cache_dir", c_char_p), ("no_cache", c_int)]


class CompileOpts(ctypes.Structure):
    _fields_ = [("k", c_int), ("formula2", c_char_p), ("sum_scheme", c_int), ("jit", c_int),
                ("dump", c_int), ("backend", c_int), ("device", c_int)]


class CompileStats(ctypes.Structure):
    _fields_ = [("parse_s", c_double), ("check_s", c_double), ("simplify_s", c_double),
                ("emit_s", c_double), ("jit_s", c_double), ("total_s", c_double),
                ("cache", c_int), ("cache_entry", c_char_p), ("verify_s", c_double),
                ("cache_s", c_double), ("emit_opt_s", c_double), ("emit_cuda_s", c_double),
                ("run_rows_tcc", c_int64), ("run_rows_cc", c_int64),
                ("run_rows_reference", c_int64), ("run_rows_cuda", c_int64),
                ("run_pairs_tcc", c_int64), ("run_pairs_cc", c_int64),
                ("run_pairs_reference", c_int64), ("run_pairs_cuda", c_int64),
                ("run_tasks", c_int64), ("run_first_cc_task", c_int64)]


class Ranges(ctypes.Structure):
    _fields_ = [("nci", c_int64), ("ranges_i", P(c_int64)), ("slices_i", P(c_int64)),
                ("nredj", c_int64), ("redranges_j", P(c_int64)),
                ("ncj", c_int64), ("ranges_j", P(c_int64)), ("slices_j", P(c_int64)),
                ("nredi", c_int64), ("redranges_i", P(c_int64))]


class EigshOpts(ctypes.Structure):
    _fields_ = [("k", c_int), ("which", c_int), ("ncv", c_int), ("tol", c_double),
                ("maxiter", c_int), ("v0", c_void_p), ("seed", c_uint64),
                ("progress", c_void_p), ("progress_user", c_void_p),
                ("progress_residual", c_void_p)]


class EigshReport(ctypes.Structure):
    _fields_ = [("converged", c_int), ("iterations", c_int), ("restarts", c_int), ("ncv", c_int),
                ("matvecs", c_int64), ("matvecs_coarse", c_int64), ("coarse_s", c_double),
                ("matvec_s", c_double), ("arpack_s", c_double), ("total_s", c_double),
                ("max_residual", c_double), ("arpack_info", c_int), ("solver", c_int)]


class SpectralOpts(ctypes.Structure):
    _fields_ = [("eig", EigshOpts), ("laplacian", c_int), ("mode", c_int),
                ("coarse_n", c_int64), ("solver", c_int), ("block", c_int)]


class Gen(ctypes.Structure):
    _fields_ = [("kind", c_int), ("n", c_int64), ("seed", c_uint64)]


# name: (restype, argtypes). Pointers to arrays travel as c_void_p.
_PROTOS = {
    "kf_version": (c_char_p, []),
    "kf_status_name": (c_char_p, [c_int]),
    "kf_options_init": (None, [P(Options)]),
    "kf_new": (c_void_p, [P(Options)]),
    "kf_free": (None, [c_void_p]),
    "kf_errmsg": (c_char_p, [c_void_p]),
    "kf_status_of": (c_int, [c_void_p]),
    "kf_error_offset": (c_int64, [c_void_p]),
    "kf_error_source": (c_int, [c_void_p]),
    "kf_threads": (c_int, [c_void_p]),
    "kf_compile_opts_init": (None, [P(CompileOpts)]),
    "kf_compile": (c_void_p, [c_void_p, c_char_p, P(c_char_p), c_int, c_char_p, c_int, c_int,
                              P(CompileOpts)]),
    "kf_kernel_free": (None, [c_void_p]),
    "kf_run": (c_int, [c_void_p, c_int64, c_int64, P(c_void_p), c_int, c_void_p, c_void_p]),
    "kf_run_ranges": (c_int, [c_void_p, c_int64, c_int64, P(c_void_p), c_int, P(Ranges),
                              c_void_p, c_void_p]),
    "kf_kernel_nargs": (c_int, [c_void_p]),
    "kf_kernel_var": (c_int, [c_void_p, c_int, P(c_int), P(c_int64)]),
    "kf_kernel_out_dim": (c_int64, [c_void_p]),
    "kf_kernel_index_dim": (c_int64, [c_void_p]),
    "kf_kernel_formula_dim": (c_int64, [c_void_p]),
    "kf_kernel_canonical": (c_char_p, [c_void_p]),
    "kf_kernel_engine": (c_char_p, [c_void_p]),
    "kf_kernel_backend": (c_char_p, [c_void_p]),
    "kf_kernel_stats": (c_int, [c_void_p, P(CompileStats)]),
    "kf_device_count": (c_int, [c_void_p, P(c_int)]),
    "kf_cache_dir": (c_int, [c_void_p, P(c_char_p), P(c_int)]),
    "kf_grid_cluster": (c_int, [c_void_p, c_int, c_void_p, c_int64, c_int64, c_double,
                                c_void_p, P(c_int64)]),
    "kf_sort_clusters": (c_int, [c_void_p, c_void_p, c_int64, c_int64, c_void_p, c_void_p]),
    "kf_permute_rows": (c_int, [c_void_p, c_void_p, c_int64, c_int64, c_void_p, c_void_p]),
    "kf_cluster_ranges": (c_int, [c_void_p, c_int, c_void_p, c_int64, c_int64, c_void_p,
                                  c_int64, c_void_p, c_void_p, c_void_p, c_void_p]),
    "kf_blocks_from_mask": (c_void_p, [c_void_p, c_void_p, c_int64, c_void_p, c_int64, c_void_p]),
    "kf_blocks_view": (None, [c_void_p, P(Ranges)]),
    "kf_blocks_free": (None, [c_void_p]),
    "kf_linop_formula": (c_void_p, [c_void_p, c_char_p, P(c_char_p), c_int, c_char_p, c_int,
                                    P(c_void_p), c_int, c_int64, c_int, P(CompileOpts),
                                    P(Ranges)]),
    "kf_linop_graph": (c_void_p, [c_void_p, c_int, c_void_p, c_void_p]),
    "kf_linop_free": (None, [c_void_p]),
    "kf_linop_apply": (c_int, [c_void_p, c_void_p, c_void_p, c_int64]),
    "kf_linop_matvecs": (c_int64, [c_void_p]),
    "kf_eigsh_opts_init": (None, [P(EigshOpts)]),
    "kf_spectral_opts_init": (None, [P(SpectralOpts)]),
    "kf_spectral": (c_int, [c_void_p, P(SpectralOpts), c_void_p, c_void_p, c_void_p,
                            P(EigshReport), P(c_int)]),
    "kf_gen_parse": (c_int, [c_char_p, P(Gen), c_char_p, c_size_t]),
    "kf_gen_dim": (c_int, [c_int]),
    "kf_gen_points": (None, [P(Gen), c_void_p]),
}


def _candidates():
    """Where libkforge.so.0 may be, in the order tried (docs/python.md)."""
    env = os.environ.get("KFORGE_LIB")
    if env:
        return [env], True
    names = ["libkforge.so.0"]  # the dynamic loader's own search: LD_LIBRARY_PATH, ld.so.cache
    found = ctypes.util.find_library("kforge")
    if found:
        names.append(found)
    # Where `make install` puts it, for a PREFIX the loader's cache does not list yet.
    for prefix in ("/usr/local", "/usr"):
        names.append(os.path.join(prefix, "lib", "libkforge.so.0"))
    return names, False


def _load():
    names, explicit = _candidates()
    why = []
    for name in names:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            why.append(str(e))
    if explicit:
        raise ImportError("kforge: KFORGE_LIB=%s cannot be loaded: %s" % (names[0], why[0]))
    raise ImportError("kforge: libkforge.so.0 not found (tried %s). Install the C library "
                      "(`make install` in the kforge source tree) or name it with KFORGE_LIB="
                      "/path/to/libkforge.so.0" % ", ".join(names))


lib, path = _load()
for _name, (_res, _args) in _PROTOS.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        raise ImportError("kforge: %s lacks %s: it is older than this package (%s)"
                          % (path, _name, "libkforge.so.%d" % ABI_MAJOR)) from None
    _f.restype, _f.argtypes = _res, _args

version = lib.kf_version().decode()
if int(version.split(".")[0]) != ABI_MAJOR:
    raise ImportError("kforge: %s is version %s; this package needs %d.x" % (path, version, ABI_MAJOR))

# One context for the process, made on first use; never freed (kernels and
# operators held by Python objects may outlive any point where it could be).
LOCK = threading.RLock()
_ctx = None


def ctx():
    global _ctx
    with LOCK:
        if _ctx is None:
            o = Options()
            lib.kf_options_init(ctypes.byref(o))
            c = lib.kf_new(ctypes.byref(o))
            if not c:
                raise MemoryError("kforge: cannot create a context (memory or threads)")
            _ctx = c
        return _ctx


def fail(status, texts=None):
    """The exception for a failing call on the context: its message, status and, when the
    message is about one of `texts` (formula, formula2, then the aliases), that text and the
    byte offset. Call with LOCK held, right after the failing call."""
    c = ctx()
    msg = (lib.kf_errmsg(c) or b"").decode(errors="replace")
    off = lib.kf_error_offset(c)
    src = lib.kf_error_source(c)
    text = None
    if texts is not None and 0 <= src < len(texts) and texts[src] is not None:
        text = texts[src]
    name = (lib.kf_status_name(status) or b"?").decode()
    return error_for(status, name, msg or name, text, off if text is not None else -1, src)


def check(status, texts=None):
    if status != KF_OK:
        raise fail(status, texts)


def release(free, handle):
    """free(handle) under LOCK, for __del__: quietly at interpreter shutdown, when the
    process is ending anyway and the module's globals may be gone."""
    if handle:
        try:
            with LOCK:
                free(handle)
        except Exception:
            pass


def cstrings(strs):
    """A C array of NUL-terminated strings (kept alive by the returned array)."""
    arr = (c_char_p * max(1, len(strs)))()
    for i, s in enumerate(strs):
        arr[i] = s.encode()
    return arr
