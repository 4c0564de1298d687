# kforge -- build, demo, tests, fuzzing.
#
#   make            library, the kforge command, tests, examples (build/)
#   make demo       build and run the README demo: the Gaussian kernel sum, then the
#                   main job (kforge eigsh: spectral coordinates of a 10^4-point spiral)
#   make test       the whole suite: unit + CLI tests, again under ASan/UBSan,
#                   bounded fuzzing; ends with "N passed, N failed, N skipped"
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each (default 20)
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

.PHONY: all demo demo-block-sparse test test-gpu bench bench-gpu fuzz clean deps
all: $(BUILD)/libkforge.a $(BUILD)/kforge $(BUILD)/kforge-tests $(EX_BIN) $(BENCH_BIN) $(BASE_BIN)

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
$(BUILD)/fuzz/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)
fuzz: $(FUZZ_BIN)
	sh scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/kforge $(BUILD)/kforge-tests $(BUILD)/*.a $(BUILD)/examples $(BUILD)/bench $(BUILD)/fuzz build/asan

# Header dependencies written by -MMD (absent on a first build: then everything is built anyway).
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
