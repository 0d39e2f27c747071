# Hostile registrars (issue 8): the tests run in `make test` (tests/e2e/tests/hostile_*.rs).
#   make hostile-figures   REGISTERs per minute, memory and CPU per hostile case, one
#                          `hostile-figure` line each; with HOSTILE_BEFORE=<path to another
#                          vicifast-cli> the same cases run against that build too, for comparison
# A client that breaks a rule fails its test; the figures print either way.

.PHONY: hostile-figures

hostile-figures: deps-engine $(if $(wildcard mk/netns.mk),netns-deps)
	$(CARGO) build -p vicifast-cli
	$(CARGO) test -p vicifast-e2e --test 'hostile_*' --no-run
	@for cli in $(VICIFAST_CLI) $(HOSTILE_BEFORE); do \
	  echo "== hostile figures of $$cli"; \
	  VICIFAST_CLI=$$cli $(CARGO) test -q -p vicifast-e2e --test 'hostile_*' --no-fail-fast -- --nocapture 2>&1 \
	    | grep -E '^hostile-figure|^test result|FAILED' || true; \
	done
