# kforge -- build, demo, tests, fuzzing.
#
#   make            library, the kforge command, tests, examples (build/)
#   make demo       build and run the README demo: the Gaussian kernel sum, then the
#                   main job (kforge eigsh: spectral coordinates of a 10^4-point spiral)
#   make test       the whole suite: unit + CLI tests, install, Python (pytest), again
#                   under ASan/UBSan, bounded fuzzing; ends with "N passed, N failed, N skipped"
#   make test-python  the Python package's tests alone (python/tests over build/libkforge.so.0)
#   make test-keops   optional, not in make test: a corpus of formulas through KeOps 2.3 (pykeops
#                   from PyPI, private venv) and kforge side by side (tests/keops/); ends with
#                   "K of N formulas match"; one SKIP line when pykeops cannot be installed
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each (default 20)
#   make install    bin/kforge, lib/libkforge.so.0 (+ .so, .a), include/kforge.h,
#                   lib/pkgconfig/kforge.pc, share/man/man1/kforge.1, share/doc/kforge
#                   under DESTDIR + PREFIX (default /usr/local); make uninstall
#
# Missing Debian packages are installed by scripts/install-deps.sh (run once,
# remembered in build/.deps-ok). Sources are found by wildcard: adding a file
# to compiler/, runtime/ (or one of their subfolders), kernels/, solvers/,
# cli/, tests/ or examples/ needs no edit here.

CC      ?= cc
BUILD   ?= build
SAN     ?= 0
OPT     ?= -O2
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# -I.: internal headers are named from the repository root ("compiler/ir.h"), so a
# file's includes read the same wherever it sits. -MMD -MP: each object's header
# dependencies are written beside it (.d) and included below. -ffp-contract=off: the
# reference evaluator and the constant folder are the oracle, and must round every
# operation as written even when EXTRA_CFLAGS brings -march=native and its FMA.
CFLAGS  := -std=gnu11 $(OPT) -ffp-contract=off -g $(WARN) -Iinclude -I. -pthread -MMD -MP $(EXTRA_CFLAGS)
LDLIBS  := -ltcc -larpack -llapack -lblas -lcrypto -ldl -lm -pthread
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(wildcard compiler/*.c compiler/*/*.c runtime/*.c runtime/*/*.c kernels/*.c solvers/*.c)

# MPI + PARPACK (docs/scale-out.md), optional: on when mpicc is on the PATH and
# pkg-config knows parpack (make MPI=0 turns it off). Then solvers/mpi/ replaces
# solvers/comm_none.c and every program links PARPACK and MPI; without them the
# build is the one-process build, and kf_comm_world says MPI is not built in.
MPICC   ?= mpicc
MPI     ?= $(shell command -v $(MPICC) >/dev/null 2>&1 && pkg-config --exists parpack 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
# Open MPI's wrapper says its flags with --showme; MPICH's prints its command with -show.
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null || $(MPICC) -show 2>/dev/null | tr ' ' '\n' | grep '^-I' | tr '\n' ' ')
MPI_LIBS   := $(shell pkg-config --libs parpack) $(shell $(MPICC) --showme:link 2>/dev/null || $(MPICC) -show 2>/dev/null | tr ' ' '\n' | grep -E '^-(L|l|Wl)' | tr '\n' ' ')
LIB_SRC    := $(filter-out solvers/comm_none.c,$(LIB_SRC)) $(wildcard solvers/mpi/*.c)
LDLIBS     += $(MPI_LIBS)
# Programs that tests/mpi/run.sh starts under mpirun (internal headers, the library only).
MPI_TEST_BIN := $(patsubst tests/mpi/%.c,$(BUILD)/mpi-tests/%,$(wildcard tests/mpi/*.c))
endif
CLI_MAIN  := cli/main.c
CLI_SRC   := $(filter-out $(CLI_MAIN),$(wildcard cli/*.c))
TEST_SRC  := $(wildcard tests/*.c)
EX_SRC    := $(wildcard examples/*.c)
BENCH_SRC := $(wildcard bench/*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EX_BIN    := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# Baselines the bench compares with: plain loops built the way a user would
# build them by hand (not through kforge), each its own binary.
BASE_SRC  := $(wildcard bench/baseline/*.c)
BASE_BIN  := $(BASE_SRC:bench/baseline/%.c=$(BUILD)/bench/baseline_%)
BASE_CFLAGS := -std=gnu11 -O3 -march=native -ffast-math -g -pthread
DEPS_OK   := build/.deps-ok

.PHONY: all demo demo-block-sparse test test-python test-keops test-gpu bench bench-gpu fuzz clean deps install uninstall shared
all: $(BUILD)/libkforge.a $(BUILD)/kforge $(BUILD)/kforge-tests $(EX_BIN) $(BENCH_BIN) $(BASE_BIN) $(MPI_TEST_BIN)

$(BUILD)/mpi-tests/%: tests/mpi/%.c $(BUILD)/libkforge.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libkforge.a $(LDLIBS)

$(DEPS_OK): scripts/install-deps.sh
	@mkdir -p $(dir $@)
	sh scripts/install-deps.sh
	@touch $@
deps: $(DEPS_OK)

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The block eigensolver's tall-thin products are plain loops over rows that
# only -O3 vectorizes (the library's -O2 keeps GCC's cheapest vectorizer);
# no -march: the library runs on any x86-64.
$(BUILD)/obj/solvers/lobpcg.o: CFLAGS += -O3
# Only the MPI files see <mpi.h>.
$(BUILD)/obj/solvers/mpi/%.o: CFLAGS += $(MPI_CFLAGS)

# A source file added or removed changes these lists, and the stamp: the
# archives and the test binary are then rebuilt without the stale objects.
SRC_LIST := $(LIB_SRC) $(CLI_SRC) $(TEST_SRC)
$(BUILD)/.sources: FORCE
	@mkdir -p $(dir $@)
	@echo '$(SRC_LIST)' | cmp -s - $@ || echo '$(SRC_LIST)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/libkforge.a: $(LIB_OBJ) $(BUILD)/.sources
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/libkforge-cli.a: $(CLI_OBJ) $(BUILD)/.sources
	@rm -f $@
	ar rcs $@ $(CLI_OBJ)

$(BUILD)/kforge: $(BUILD)/obj/$(CLI_MAIN:.c=.o) $(BUILD)/libkforge-cli.a $(BUILD)/libkforge.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test binary routes malloc/calloc/realloc of every object it links
# (libkforge included) through tests/fault.c, which can make the n-th one fail.
TEST_WRAP := -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
$(BUILD)/kforge-tests: $(TEST_OBJ) $(BUILD)/libkforge-cli.a $(BUILD)/libkforge.a $(BUILD)/.sources
	$(CC) $(LDFLAGS) $(TEST_WRAP) -o $@ $(TEST_OBJ) $(BUILD)/libkforge-cli.a $(BUILD)/libkforge.a $(LDLIBS)

# Examples and benches are users of the library: kforge.h and libkforge only.
$(BUILD)/examples/%: examples/%.c $(BUILD)/libkforge.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libkforge.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libkforge.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libkforge.a $(LDLIBS)

$(BUILD)/bench/baseline_%: bench/baseline/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -o $@ $< -lm

# The shared library: the same sources compiled -fPIC in their own tree,
# only kf_* exported (scripts/kforge.map), soname libkforge.so.0. Debian's
# libtcc exists only as a non-PIC static archive, which no shared object can
# hold: libkforge.so names tcc_* weakly (KFR_TCC_OPTIONAL, runtime/jit/jit_tcc.c)
# and a program links libtcc itself (kforge.pc's Libs: -Wl,-u,tcc_new -ltcc,
# since a weak reference pulls no archive member), whose members the linker
# then exports to it; a program without it (Python) runs the cc tier.
PREFIX  ?= /usr/local
SOVER   := 0
KF_VERSION := $(shell awk '/define KF_VERSION_(MAJOR|MINOR|PATCH) /{ v = v (v == "" ? "" : ".") $$3 } END { print v }' include/kforge.h)
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
$(BUILD)/pic/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(BUILD)/pic/solvers/lobpcg.o: CFLAGS += -O3
$(BUILD)/pic/runtime/jit/jit_tcc.o: CFLAGS += -DKFR_TCC_OPTIONAL
$(BUILD)/pic/solvers/mpi/%.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/libkforge.so.$(SOVER): $(PIC_OBJ) scripts/kforge.map $(BUILD)/.sources
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libkforge.so.$(SOVER) \
	    -Wl,--version-script=scripts/kforge.map -o $@ $(PIC_OBJ) $(filter-out -ltcc,$(LDLIBS))
shared: $(BUILD)/libkforge.so.$(SOVER)

# pkg-config: Libs.private lists what a static link needs besides libkforge.a.
$(BUILD)/kforge.pc: Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: kforge' 'Description: reductions over all pairs of two point clouds (KeOps formulas)' \
	    'Version: $(KF_VERSION)' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lkforge -Wl,-u,tcc_new -ltcc' \
	    'Libs.private: $(filter-out -ltcc,$(LDLIBS))' >$@

$(BUILD)/man/kforge.1: $(BUILD)/kforge scripts/man.sh
	@mkdir -p $(dir $@)
	sh scripts/man.sh $(BUILD)/kforge $@

DOCS := README.md $(wildcard docs/*.md)
install: $(BUILD)/kforge $(BUILD)/libkforge.a $(BUILD)/libkforge.so.$(SOVER) $(BUILD)/kforge.pc \
         $(BUILD)/man/kforge.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/doc/kforge
	install -m 755 $(BUILD)/kforge $(DESTDIR)$(PREFIX)/bin/kforge
	install -m 644 $(BUILD)/libkforge.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libkforge.so.$(SOVER)
	ln -sf libkforge.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libkforge.so
	install -m 644 $(BUILD)/libkforge.a $(DESTDIR)$(PREFIX)/lib/libkforge.a
	install -m 644 include/kforge.h $(DESTDIR)$(PREFIX)/include/kforge.h
	install -m 644 $(BUILD)/kforge.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/kforge.pc
	install -m 644 $(BUILD)/man/kforge.1 $(DESTDIR)$(PREFIX)/share/man/man1/kforge.1
	install -m 644 $(DOCS) $(DESTDIR)$(PREFIX)/share/doc/kforge/
# Removes exactly what install put there (and the doc folder when it is empty).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/kforge $(DESTDIR)$(PREFIX)/lib/libkforge.so.$(SOVER) \
	    $(DESTDIR)$(PREFIX)/lib/libkforge.so $(DESTDIR)$(PREFIX)/lib/libkforge.a \
	    $(DESTDIR)$(PREFIX)/include/kforge.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/kforge.pc \
	    $(DESTDIR)$(PREFIX)/share/man/man1/kforge.1 \
	    $(addprefix $(DESTDIR)$(PREFIX)/share/doc/kforge/,$(notdir $(DOCS)))
	-rmdir $(DESTDIR)$(PREFIX)/share/doc/kforge 2>/dev/null

# make bench: figures for docs/performance.md, ratios taken in one run.
bench: all
	sh bench/run.sh $(BUILD)

demo: $(BUILD)/examples/gauss_demo $(BUILD)/kforge
	$(BUILD)/examples/gauss_demo
	$(BUILD)/kforge eigsh --gen spiral:10000 --laplacian unnormalized

# The block-sparse tutorial reproduced (examples/block_sparse.c).
demo-block-sparse: $(BUILD)/examples/block_sparse
	$(BUILD)/examples/block_sparse

test: $(DEPS_OK)
	sh scripts/run-tests.sh
test-python: $(DEPS_OK)
	sh tests/python.sh
# Both engines on tests/keops/corpus.txt; downloads pykeops (once) and compiles with g++.
test-keops: shared
	sh tests/keops/run.sh $(BUILD)

# On a machine with an NVIDIA GPU (docs/cuda.md): the CUDA tests, and the GPU figures.
test-gpu: all $(BUILD)/kforge-tests
	sh scripts/test-gpu.sh $(BUILD)
bench-gpu: all
	sh bench/gpu.sh $(BUILD)

# Fuzzers: clang + libFuzzer, with ASan and UBSan, over the library and the CLI's readers.
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Iinclude -I. -pthread -MMD -MP -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wno-unused-command-line-argument
FUZZ_OBJ := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRC) $(CLI_SRC))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/obj/solvers/mpi/%.o: FUZZ_CFLAGS += $(MPI_CFLAGS)
$(BUILD)/fuzz/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
# $< and the objects, not $^: the -MMD file written beside each fuzzer makes its
# headers prerequisites too, and clang must not be handed them.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)
fuzz: $(FUZZ_BIN)
	sh scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/pic $(BUILD)/kforge $(BUILD)/kforge-tests $(BUILD)/*.a $(BUILD)/*.so.* \
	    $(BUILD)/kforge.pc $(BUILD)/man $(BUILD)/examples $(BUILD)/bench $(BUILD)/fuzz build/asan

# Header dependencies written by -MMD (absent on a first build: then everything is built anyway).
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
