# actionpool — build, test, demo, bench.
#   make            bin/actionpool-{producer,worker,ctl}
#   make asan       the same with AddressSanitizer + UBSan, in build/asan/bin
#   make test       unit tests (no servers), then integration tests on their own stack
#   make demo       local stack up, sample kernel output through two workers, result shown
#   make bench      throughput benchmark (bench/README.md); make bench BENCH_ARGS="--full --profile"

CC      ?= cc
PKGS    := rdkafka hiredis jansson libcurl libpq
OPT     ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE $(OPT) -Wall -Wextra -Werror -Wstrict-prototypes \
           -Wmissing-prototypes -Wshadow -Icommon $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -lpthread

BUILD   ?= build/release
BIN     ?= bin

COMMON_SRC   := $(wildcard common/*.c)
PRODUCER_SRC := producer/producer_main.c producer/fetch.c producer/budget_neutral.c
CTL_SRC      := producer/ctl_main.c producer/migrate.c producer/lag.c \
                producer/report.c producer/pg.c producer/table.c producer/summary.c \
                producer/revert.c producer/controls.c producer/breaker.c producer/replay.c \
                producer/cli_time.c
WORKER_SRC   := $(wildcard worker/*.c)
UNIT_SRC     := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
PROGRAMS := $(BIN)/actionpool-producer $(BIN)/actionpool-worker $(BIN)/actionpool-ctl

all: $(PROGRAMS)

$(BIN)/actionpool-producer: $(call obj,$(PRODUCER_SRC) $(COMMON_SRC))
$(BIN)/actionpool-ctl:      $(call obj,$(CTL_SRC) $(COMMON_SRC))
$(BIN)/actionpool-worker:   $(call obj,$(WORKER_SRC) $(COMMON_SRC))
$(BUILD)/unit-tests:        $(call obj,$(UNIT_SRC) $(COMMON_SRC) producer/budget_neutral.c)

$(PROGRAMS) $(BUILD)/unit-tests:
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/bin OPT="-O1 -g -fno-omit-frame-pointer \
	  -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined"

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

# test and demo first install what is missing (a no-op on a ready machine), then
# build in a second make, so pkg-config runs after the -dev packages are there.
deps:
	deploy/local/stack.sh install

test: deps
	$(MAKE) format-check all unit
	tests/http_target/smoke.sh
	tests/integration/run.sh
	tests/deploy/validate.sh

demo: deps
	$(MAKE) all
	deploy/local/demo.sh

bench: deps
	$(MAKE) all
	bench/run.sh $(BENCH_ARGS)

format-check:
	clang-format --dry-run --Werror common/*.[ch] producer/*.[ch] worker/*.[ch] tests/unit/*.[ch] \
	  tests/http_target/*.c bench/*.c

clean:
	rm -rf build bin

.PHONY: all asan deps unit test demo bench format-check clean
