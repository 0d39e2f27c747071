# Soak: thousands of refresh cycles of vicifast-cli against a real Kamailio on loopback, the
# CLIs' memory and file descriptors sampled from start to end. Included by the Makefile.
#   make soak   40 CLIs, 8 minutes, expires 16 s; fails if memory or fds grow
#               (SOAK_ARGS="--clients 5 --minutes 2" for a quick look; --transport tcp|tls)
# Minutes long, so not part of `make test`.
SOAK_ARGS ?=

.PHONY: soak
soak: deps-engine
	$(CARGO) build -p vicifast-cli -p vicifast-e2e --bins
	$(TARGET_DIR)/debug/soak $(SOAK_ARGS)
