# Fuzzing the core with cargo-fuzz (libFuzzer), on the stable toolchain. Included by the Makefile.
#   make fuzz   runs every target FUZZ_SECONDS (default 60) and prints executions per target;
#               fails on any crash or hang (the input is left in fuzz/artifacts/<target>/)
# Not part of `make test`; `make test` replays fuzz/regressions/ (vicifast-core's
# fuzz_regressions test), every input a past run found.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= message challenge registration edge stream

.PHONY: fuzz
fuzz:
	@scripts/ensure-cargo-fuzz.sh
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
