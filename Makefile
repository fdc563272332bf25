# A thin front over CMake and CTest; see README.md.
#   make deps   install missing Debian and npm packages
#   make build  build/dpsd and build/dpsctl
#   make run    start dpsd on loopback with a data directory under var/
#   make test   deps, build, every test, then the same suite under ASan + UBSan (clang)
#   make bench  benchmarks, results in bench/RESULTS.md
#   make fuzz   build the libFuzzer targets and run each for a while
#   make docs   regenerate the configuration reference (docs/ and README.md)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST = ctest --output-on-failure --timeout 900 -j $(JOBS)

.PHONY: all deps build run test test-asan bench fuzz format docs clean

all: build

deps:
	@scripts/deps.sh

build/CMakeCache.txt:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: build/CMakeCache.txt
	cmake --build build -j $(JOBS)

run: build
	build/dpsd --data-dir var/dev --hostname localhost \
	    --https-listen 127.0.0.1:443 --mqtt-listen 127.0.0.1:8883 \
	    --linked-hub dev-hub.local

test: deps build
	cd build && $(CTEST)
	$(MAKE) test-asan

# The sanitizer pass builds with clang, so that its warnings (-Werror) are
# checked too: the first pass is gcc's.
test-asan:
	cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DDPS_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)

bench: deps build
	bench/run.sh

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPS_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

docs: build
	scripts/gen-config-docs.py build/dpsd

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
