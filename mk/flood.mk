# Flood figures for issue 8: what 51 MB of tiny responses, then 51 MB of CRLFCRLF pings, on the
# TCP flow cost vicifast-cli register (peak RSS, CPU, pongs written).
#   make bench-flood
.PHONY: bench-flood

bench-flood: deps-engine
	$(CARGO) build --release -p vicifast-cli -p vicifast-e2e --bins
	VICIFAST_CLI=$(TARGET_DIR)/release/vicifast-cli $(TARGET_DIR)/release/bench_flood 51
