# cowlab -- build, test and measure.  `make help` lists the targets.
WARN      = -Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings \
            -Wstrict-prototypes -Wmissing-prototypes
PKGS      = libuv jansson
CPPFLAGS += -D_GNU_SOURCE -MMD -MP
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) $(shell pkg-config --cflags $(PKGS))
LIBS      = $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lm
CHECK_LIBS = $(shell pkg-config --libs check)
SAN       = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
BUILD    ?= build/release
CC       ?= cc
GEN       = $(BUILD)/gen

# Layers (README "The source, layer by layer"): each folder sees only its
# own headers and those of the layers below it, so an include that goes
# the wrong way does not compile.  RT_BUILD_CORE, which opens the
# runtime's internal headers, is defined for runtime/ and for the
# white-box tests that check its invariants.
LAYERS        = runtime common workloads measure server
INC_runtime   = -Iruntime -DRT_BUILD_CORE
INC_common    = -Icommon
INC_workloads = -Iworkloads -Iruntime -Icommon -I$(GEN)
INC_measure   = -Imeasure -Iruntime -Icommon
INC_server    = -Iserver -Iworkloads -Imeasure -Iruntime -Icommon
INC_tests     = $(INC_server) -Itests
WHITEBOX      = check_gc check_gcfaith check_wset

RT_SRC    = $(wildcard runtime/*.c)
CM_SRC    = $(wildcard common/*.c)
WL_SRC    = $(wildcard workloads/*.c)
MS_SRC    = $(wildcard measure/*.c)
SRV_SRC   = $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ   = $(patsubst %.c,$(BUILD)/%.o,$(RT_SRC) $(CM_SRC) $(WL_SRC) $(MS_SRC) $(SRV_SRC))
LIB       = $(BUILD)/libcowlab.a
TEST_SUPPORT = $(wildcard tests/support.c)
TEST_BIN  = $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
BENCH_BIN = $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/bench_*.c))
SERVER    = $(BUILD)/cowlab
EMBEDDED  = $(GEN)/wl_embedded.h
# --write-kinds: the same server built with RT_WRITE_KINDS (runtime/
# wkinds.h), so the default build's hot paths carry no trace of it;
# `cowlab --write-kinds` runs the cowlab-kinds beside it.
KINDS     = $(BUILD)/kinds
KINDS_OBJ = $(patsubst %.c,$(KINDS)/%.o,$(RT_SRC) $(CM_SRC) $(WL_SRC) \
                $(MS_SRC) $(SRV_SRC) server/main.c)
SERVER_KINDS = $(BUILD)/cowlab-kinds

.PHONY: all layers test debug asan bench clean help experiment validate \
        experiment-fleet experiment-designs \
        validate-app \
        test-experiment small-arenas valgrind fuzz fuzz-replay chaos \
        readme-columns
all: $(SERVER) bin/cowlab bin/cowlab-kinds ## build the server as bin/cowlab (and bin/cowlab-kinds)

bin/cowlab: $(SERVER)
	@mkdir -p bin
	rm -f $@ && cp $(SERVER) $@

bin/cowlab-kinds: $(SERVER_KINDS)
	@mkdir -p bin
	rm -f $@ && cp $(SERVER_KINDS) $@

$(KINDS)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_$(firstword $(subst /, ,$*))) $(ALL_CFLAGS) \
	    -DRT_WRITE_KINDS -c $< -o $@
$(KINDS)/workloads/workload.o: $(EMBEDDED)

$(SERVER_KINDS): $(KINDS_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_$(firstword $(subst /, ,$*))) $(ALL_CFLAGS) -c $< -o $@

# The embedded workloads: every workloads/*.json compiled in (xxd -i).
$(EMBEDDED): $(wildcard workloads/*.json) scripts/embed_workloads.sh
	@mkdir -p $(dir $@)
	scripts/embed_workloads.sh $@ $(sort $(wildcard workloads/*.json))
$(BUILD)/workloads/workload.o: $(EMBEDDED)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SERVER): $(BUILD)/server/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ $(LIBS) -o $@

TEST_FLAGS = $(INC_tests) $(if $(filter $(notdir $@),$(WHITEBOX)),-DRT_BUILD_CORE)
$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) $(LIB) $(SERVER) $(SERVER_KINDS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_FLAGS) $(ALL_CFLAGS) $(LDFLAGS) $< \
	    $(TEST_SUPPORT) $(LIB) $(LIBS) $(CHECK_LIBS) -o $@

# check_wkinds tests the runtime built with RT_WRITE_KINDS: the kinds
# objects, not the library.
KINDS_LIB_OBJ = $(filter-out $(KINDS)/server/main.o,$(KINDS_OBJ))
$(BUILD)/tests/check_wkinds: tests/check_wkinds.c $(TEST_SUPPORT) \
        $(KINDS_LIB_OBJ) $(SERVER) $(SERVER_KINDS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_tests) -DRT_BUILD_CORE -DRT_WRITE_KINDS \
	    $(ALL_CFLAGS) $(LDFLAGS) $< $(TEST_SUPPORT) $(KINDS_LIB_OBJ) \
	    $(LIBS) $(CHECK_LIBS) -o $@

$(BUILD)/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_tests) $(ALL_CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

layers:                      ## check that no source reaches another layer by a relative include
	@bad=$$(grep -n '^#include "[^"]*/' $(foreach l,$(LAYERS),$(l)/*.[ch]) || true); \
	if [ -n "$$bad" ]; then echo "includes by path cross the layers' include rules:"; \
	    echo "$$bad"; exit 1; fi

# A test that cannot run here prints "SKIP name: reason" into SKIPS (see
# tests/skips.sh); the count ends the run.  COWLAB_REQUIRE_ALL=1 makes a
# skip fail it, except those matching COWLAB_ALLOW_SKIP (a regex).
SKIPS     = $(CURDIR)/$(BUILD)/skips.txt
# The runtime's tests run again in every design mode (issue 13): the
# layouts and refcount schemes other than the default, taken from the
# environment by rt_opts_default().  check_designs runs the layouts side
# by side itself.
RT_TESTS  = check_mem check_object check_gc check_gcfaith check_objects check_split \
            check_workload
RT_MODES  = side:inline bitmap:inline inline:split side:split bitmap:split
# Under the sanitizers, the two modes that between them run every design's
# code (each layout with split refcounts): the others add time, not code.
RT_MODES_ASAN = side:split bitmap:split
test: layers $(TEST_BIN) $(BENCH_BIN)     ## one program per tests/check_*.c, the runtime's again in every design mode, then the runner; stop at the first failure
	@: > $(SKIPS)
	@for t in $(TEST_BIN); do COWLAB_SKIPS=$(SKIPS) \
	    COWLAB_BIN=$(SERVER) COWLAB_BUILD=$(BUILD) ./$$t || exit 1; done
	@for m in $(RT_MODES); do l=$${m%:*}; r=$${m#*:}; \
	    echo "== the runtime's tests with --gc-layout $$l --refcount $$r"; \
	    for t in $(RT_TESTS); do COWLAB_GC_LAYOUT=$$l COWLAB_REFCOUNT=$$r \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) COWLAB_BUILD=$(BUILD) \
	    ./$(BUILD)/tests/$$t || { echo "FAILED with --gc-layout $$l --refcount $$r"; \
	    exit 1; }; done; done
	@if [ "$(BUILD)" = build/release ]; then COWLAB_SKIPS=$(SKIPS) \
	    COWLAB_BIN=$(SERVER) scripts/test_experiment.sh || exit 1; \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) \
	    scripts/test_designs.sh || exit 1; \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) \
	    scripts/test_fleet.sh || exit 1; \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) \
	    scripts/test_realserver.sh || exit 1; \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) \
	    scripts/test_census.sh || exit 1; \
	else COWLAB_SKIPS=$(SKIPS) tests/skips.sh add test_experiment \
	    "the runner is tested with the release build (make test)"; \
	COWLAB_SKIPS=$(SKIPS) tests/skips.sh add test_designs \
	    "the design matrix is tested with the release build (make test)"; \
	COWLAB_SKIPS=$(SKIPS) tests/skips.sh add test_fleet \
	    "the fleet runner is tested with the release build (make test)"; \
	COWLAB_SKIPS=$(SKIPS) tests/skips.sh add test_census \
	    "the heap census is tested with the release build (make test)"; \
	COWLAB_SKIPS=$(SKIPS) tests/skips.sh add test_realserver \
	    "the real-server runner is tested with the release build (make test)"; fi
	@tests/skips.sh report $(SKIPS)

debug:                       ## tests with assertions, heap checks and fill patterns
	$(MAKE) BUILD=build/debug CFLAGS="-O0 -g -DRT_DEBUG" test

asan:                        ## tests under ASan+UBSan: never take measurements from this build
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g $(SAN) -DRT_DEBUG -DRT_MALLOC_BYPASS" \
	        LDFLAGS="$(SAN)" RT_MODES="$(RT_MODES_ASAN)" test

small-arenas:                ## tests with the seeds' 256 KiB arenas and 4 KiB pools
	$(MAKE) BUILD=build/small CFLAGS="-O2 -g -DMEM_SMALL_ARENAS" test

bench: $(BENCH_BIN) $(SERVER) ## print the benchmark figures (release build; as root: installs nginx-light for the ratio)
	@: > $(SKIPS)
	@for b in $(BENCH_BIN); do COWLAB_BIN=$(SERVER) ./$$b || exit 1; done
	@COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) tests/bench/bench_server.sh
	@COWLAB_SKIPS=$(SKIPS) COWLAB_BIN=$(SERVER) tests/bench/bench_attribution.sh
	@tests/skips.sh report $(SKIPS)

VALGRIND_TESTS = check_object check_gc check_gcfaith check_mem check_workload
valgrind: $(TEST_BIN)        ## the runtime tests under valgrind memcheck (leaks and errors fail)
	@: > $(SKIPS)
	@for t in $(VALGRIND_TESTS); do echo "valgrind: $$t"; \
	    COWLAB_SKIPS=$(SKIPS) COWLAB_VALGRIND=1 valgrind -q --error-exitcode=1 \
	        --leak-check=full --errors-for-leak-kinds=definite \
	        ./$(BUILD)/tests/$$t || exit 1; done
	@tests/skips.sh report $(SKIPS)

FUZZ_SECONDS ?= 60
fuzz:                        ## every libFuzzer target for FUZZ_SECONDS each (clang)
	tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-replay:                 ## replay seeds and kept crashers under ASan+UBSan, no libFuzzer
	tests/fuzz/run.sh --replay

CHAOS_SECONDS ?= 60
chaos: all                   ## SIGKILL a random worker every 0.5 s under wrk load, then SIGHUP reloads
	scripts/chaos.sh $(CHAOS_SECONDS)

EXPERIMENT_ARGS ?=
experiment:                  ## the policy matrix under wrk load into results/<timestamp>/ (as root: installs what is missing)
	scripts/experiment $(EXPERIMENT_ARGS)

validate:                    ## the same experiment with CPython itself, side by side with the model
	scripts/experiment --validate $(EXPERIMENT_ARGS)

experiment-fleet:            ## the fleet strategies over time (KSM, refork, recycling) into results/<timestamp>-fleet/
	scripts/experiment --fleet $(EXPERIMENT_ARGS)

experiment-designs:          ## the runtime designs (--gc-layout, --refcount, --warmup) under load into results/<timestamp>-designs/
	scripts/experiment --designs $(EXPERIMENT_ARGS)
VALIDATE_APP_ARGS ?=
validate-app: $(SERVER)      ## the census Django app under CPython vs cowlab serving its census, per policy
	python3 scripts/validate_app.py --bin $(SERVER) $(VALIDATE_APP_ARGS)

test-experiment: $(SERVER)   ## the experiment runner end to end in --quick mode (~15 s)
	COWLAB_BIN=$(SERVER) scripts/test_experiment.sh

readme-columns: $(SERVER)    ## rewrite the README's CSV column tables from the server's tables
	scripts/readme_columns.sh $(SERVER) README.md

clean:                       ## remove every build output
	rm -rf build bin

help:                        ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

-include $(shell find build -name '*.d' 2>/dev/null)
