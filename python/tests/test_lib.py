"""The binding itself: struct layouts against the C compiler's, finding the library,
versions, errors, and what a process without libtcc runs."""
import ctypes
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kforge
from kforge import _lib
from conftest import ROOT

STRUCTS = {"kf_options": _lib.Options, "kf_compile_opts": _lib.CompileOpts,
           "kf_compile_stats": _lib.CompileStats, "kf_ranges": _lib.Ranges,
           "kf_eigsh_opts": _lib.EigshOpts, "kf_eigsh_report": _lib.EigshReport,
           "kf_spectral_opts": _lib.SpectralOpts, "kf_gen": _lib.Gen}


def test_struct_layouts_match_kforge_h(tmp_path):
    """Every ctypes struct has the size and field offsets the C compiler gives kforge.h's."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc:
        pytest.skip("no C compiler to read kforge.h's layouts")
    lines = []
    for cname, py in STRUCTS.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
        for f, _ in py._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (cname, f, cname, f))
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"kforge.h\"\n"
                   "int main(void) {\n%s\nreturn 0;\n}\n" % "\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe)], check=True)
    got = dict(l.split() for l in subprocess.run([str(exe)], capture_output=True, text=True,
                                                 check=True).stdout.splitlines())
    for cname, py in STRUCTS.items():
        assert int(got[cname]) == ctypes.sizeof(py), cname
        for f, _ in py._fields_:
            assert int(got["%s.%s" % (cname, f)]) == getattr(py, f).offset, "%s.%s" % (cname, f)


def test_versions(kforge_bin):
    assert kforge.library_version == kforge.__version__
    out = subprocess.run([kforge_bin, "--version"], capture_output=True, text=True).stdout
    assert out.split()[-1] == kforge.library_version


def _python(code, **env):
    e = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    e.update(env)
    e = {k: v for k, v in e.items() if v is not None}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=e, cwd=ROOT)


def test_kforge_lib_that_cannot_load():
    r = _python("import kforge", KFORGE_LIB="/nonexistent/libkforge.so.0")
    assert r.returncode != 0
    assert "KFORGE_LIB=/nonexistent/libkforge.so.0 cannot be loaded" in r.stderr


def test_found_by_the_dynamic_loader():
    """Without KFORGE_LIB the loader's own search finds it (LD_LIBRARY_PATH here)."""
    env = {"KFORGE_LIB": None, "LD_LIBRARY_PATH": os.path.join(ROOT, "build")}
    r = _python("import kforge; print(kforge.library_path)", **env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "libkforge.so.0"


def test_no_libtcc_in_python():
    """Python carries no libtcc: auto runs cc code, and tcc says why it cannot run."""
    code = """
        import numpy as np, kforge
        x = np.ones((3, 1)); y = np.ones((4, 1))
        g = kforge.Genred('x*y', ['x=Vi(1)', 'y=Vj(1)'], 'Sum', axis=1)
        print(g(x, y).ravel().tolist())
        k = kforge.Kernel('x*y', ['x=Vi(1)', 'y=Vj(1)'], 'Sum', 1, np.float64)
        k.run([x, y]); print(k.engine())
        try:
            kforge.Kernel('x*y', ['x=Vi(1)', 'y=Vj(1)'], 'Sum', 1, np.float64, jit='tcc')
        except kforge.UnsupportedError as e:
            print('tcc:', e.status_name, e)
    """
    r = _python(code, KFORGE_JIT=None)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "[4.0, 4.0, 4.0]"
    assert lines[1] == "cc"
    assert lines[2].startswith("tcc: KF_ERR_UNSUPPORTED the libtcc engine is not in this process")


def test_formula_error_carries_the_column():
    with pytest.raises(kforge.FormulaError) as e:
        kforge.Genred("Exp(-SqDist(x,y)) + z", ["x=Vi(0,3)", "y=Vj(1,3)"], "Sum", axis=1)
    err = e.value
    assert err.status_name == "KF_ERR_SYNTAX" and err.source == 0
    assert err.text == "Exp(-SqDist(x,y)) + z"
    assert err.offset == 20 and err.column == 21
    assert "unknown name 'z'" in err.message
    assert str(err).endswith("Exp(-SqDist(x,y)) + z\n    " + " " * 20 + "^")


def test_alias_error_names_the_alias():
    with pytest.raises(kforge.FormulaError) as e:
        kforge.Genred("x*y", ["x=Vi(0,3)", "y=Vj(1,3"], "Sum", axis=1)
    assert e.value.source == 3 and e.value.text == "y=Vj(1,3" and e.value.offset >= 0


def test_type_error_is_a_formula_error():
    with pytest.raises(kforge.FormulaError) as e:
        kforge.Genred("x+y", ["x=Vi(0,3)", "y=Vj(1,2)"], "Sum", axis=1)
    assert e.value.status_name == "KF_ERR_TYPE" and e.value.column is not None


def test_bad_reduction():
    with pytest.raises(kforge.KforgeError) as e:
        kforge.Genred("x", ["x=Vi(0,1)"], "Summ", axis=1)
    assert "Summ" in str(e.value)


def test_cache_dir_is_the_environment_one():
    d, mode = kforge.cache_dir()
    assert d == os.environ["KFORGE_CACHE_DIR"] and mode == 1
