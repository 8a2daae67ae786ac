# Plexus — the commands a user types.  CMake does the building underneath.
#   make          build build/bin/plexus and libplexus
#   make demo     install deps, build, run a local network doing real work
#   make check    install deps, build, run every test (unit, integration,
#                 ASan+UBSan unit tests, TSan threaded tests, fuzz smoke)
#   make bench    benchmarks (ratios against same-run references)
#   make fuzz     each fuzz target for longer (FUZZ_SECONDS, default 300)
#   make asan / make tsan   sanitizer builds in build-asan/ build-tsan/
#   make soak     the consensus simulator over SOAK_SEEDS (20000) schedules
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_GEN := -G Ninja
FUZZ_SECONDS ?= 300
CHECK_FUZZ_SECONDS ?= 10

.PHONY: all build deps demo check test unit asan tsan fuzz fuzz-build bench soak clean format

all: build

deps:
	@./scripts/install-deps

build/build.ninja:
	cmake -S . -B build $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: build/build.ninja
	cmake --build build -j $(JOBS)

demo: deps build
	./scripts/demo

test: build
	cd build && ctest --output-on-failure -j $(JOBS) -L unit
	cd build && ctest --output-on-failure -L integration

asan:
	cmake -S . -B build-asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPX_SANITIZE=address -DPX_BENCH=OFF >/dev/null
	cmake --build build-asan -j $(JOBS)

tsan:
	cmake -S . -B build-tsan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DPX_SANITIZE=thread -DPX_BENCH=OFF >/dev/null
	cmake --build build-tsan -j $(JOBS)

fuzz-build:
	CC=clang cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DPX_FUZZ=ON -DPX_SANITIZE=address >/dev/null
	cmake --build build-fuzz -j $(JOBS)

fuzz: deps fuzz-build
	cd build-fuzz && PX_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz

check: deps build asan tsan fuzz-build
	./scripts/check $(CHECK_FUZZ_SECONDS)

# Long simulator run: many more adversarial consensus schedules.
SOAK_SEEDS ?= 20000
soak: build
	PX_SIM_SEEDS=$(SOAK_SEEDS) ./build/tests/test_sim

bench: deps build
	./scripts/bench

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
