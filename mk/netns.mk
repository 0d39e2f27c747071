# Mobility tests in Linux network namespaces, and the mobility benchmark (issue 3).
# Included by the Makefile. Both need root (namespaces, veth, nftables); without root the tests
# print "skipped: needs root for network namespaces" and pass.
#   make netns-test       scenarios 1-7 and the switch race against a real Kamailio, and calls
#                         through the softphone edge proxy across a route switch
#   make bench-mobility   network change -> new binding, VICIfast vs baresip, 20 runs each
#                         (BENCH_MOBILITY_ARGS="--runs 5 --no-baresip" for a quick look)

NETNS_PACKAGES := iproute2 nftables conntrack procps util-linux openssl \
  kamailio kamailio-tls-modules baresip-core
BENCH_MOBILITY_ARGS ?=

.PHONY: netns-deps netns-test bench-mobility

netns-deps:
	@scripts/ensure-packages.sh $(NETNS_PACKAGES)

# The tests start the real CLI, so build it first; they find it through VICIFAST_CLI.
netns-test: netns-deps
	$(CARGO) build -p vicifast-cli
	$(CARGO) test -p vicifast-e2e --test 'mobility_*' --test edge_network_change --no-fail-fast

bench-mobility: netns-deps
	$(CARGO) build -p vicifast-cli
	$(CARGO) run -q -p vicifast-e2e --bin bench_mobility -- $(BENCH_MOBILITY_ARGS)
