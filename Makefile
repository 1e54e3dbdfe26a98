# tallow — the commands a developer runs. Everything installs what it needs by itself.
#   make demo     build, make the demo models, print the comparison table
#   make test     build and run every test (what CI runs), on the CPU even where a GPU is present
#   make debug    ASan + UBSan build, all tests
#   make fuzz     libFuzzer targets (clang); make fuzz-run FUZZ_SECONDS=60 runs each
#   make install PREFIX=/usr/local
#   make test-cuda  CUDA op and end-to-end tests (on a GPU machine)
#   make bench-peers  tallow and llama.cpp (llama-cpp-python) side by side on the demo shapes

PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: all build deps test demo debug fuzz fuzz-run install test-cuda clean test-venv

all: build

deps:
	@bash tools/setup.sh deps

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS)

test-venv:
	@bash tools/setup.sh test-venv

test: build test-venv
	cd build && TALLOW_CUDA_AUTO=0 ctest --output-on-failure -j$(JOBS) -LE cuda

demo: build
	@bash tools/demo.sh

debug: deps test-venv
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DTALLOW_SANITIZE=ON >/dev/null
	@cmake --build build-debug -j$(JOBS)
	cd build-debug && TALLOW_CUDA_AUTO=0 ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS)

fuzz: deps
	@bash tools/setup.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTALLOW_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS)

fuzz-run: fuzz
	@bash tools/fuzz_run.sh $(FUZZ_SECONDS)

install: build
	cmake --install build --prefix $(PREFIX)

test-cuda: build
	@bash tools/test_cuda.sh

.PHONY: bench-peers
bench-peers: build
	@bash tools/setup.sh lcpp
	@bash tools/bench_side_by_side.sh

clean:
	rm -rf build build-debug build-fuzz
