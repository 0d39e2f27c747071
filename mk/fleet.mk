# The fleet benchmark (issue 8): N registrations in one process (distinct users, UDP, digest auth)
# against a real Kamailio on loopback, through a cold start, a registrar restart and a broken
# path, beside SIPp sending the same REGISTER-with-auth load. Included by the Makefile.
#   make bench-fleet                                  N = 100, 1,000 and 10,000
#   make bench-fleet BENCH_FLEET_SIZES="100 1000"     other sizes
#   make bench-fleet BENCH_FLEET_ARGS="--drop-secs 20 --no-sipp"   a quick look
# The broken-path phase needs root (nftables); without it, it is skipped with a message.

BENCH_FLEET_SIZES ?= 100 1000 10000
BENCH_FLEET_ARGS ?=

.PHONY: bench-fleet

bench-fleet: deps-engine
	$(CARGO) build --release -p vicifast-e2e --bin bench_fleet
	$(TARGET_DIR)/release/bench_fleet --sizes "$(BENCH_FLEET_SIZES)" $(BENCH_FLEET_ARGS)

bench: bench-fleet
