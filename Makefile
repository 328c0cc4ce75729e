# The whole set-up on a fresh Debian 12 machine:
#   make run    install what is missing, build, start the worklist server on port 11112
#   make test   install what tests need, build, run every test (normal and ASan+UBSan)
# Other targets: deps, build, asan, format, format-check, fuzz, fuzz-build, clean.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PORT       ?= 11112
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
CTEST_ARGS ?=

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '_gen\.[ch]$$')

.PHONY: all deps deps-test build asan test test-normal test-asan run format format-check fuzz fuzz-build clean

all: build

deps:
	@sh scripts/deps.sh

deps-test:
	@sh scripts/deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMWL_WERROR=ON
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMWL_WERROR=ON -DMWL_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j $(JOBS)

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run -Werror $(SOURCES)

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Format first, then both builds; the run ends with CTest's summary line.
test: deps-test
	$(MAKE) format-check
	$(MAKE) test-normal
	$(MAKE) test-asan

run: build
	@sh scripts/run.sh $(BUILD)/mwl $(PORT)

fuzz-build: deps-test
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMWL_FUZZ=ON -DMWL_SANITIZE=ON
	cmake --build $(BUILD_FUZZ) -j $(JOBS)

# Every fuzzer for FUZZ_SECONDS, FUZZ_JOBS at a time; one line per target,
# findings copied into fuzz/corpus/<target>/crash-<sha256> (fuzz/README.md).
fuzz: fuzz-build
	BUILD_FUZZ=$(BUILD_FUZZ) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) bash scripts/fuzz_run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
