#!/bin/sh
# Measures the bank on this machine and prints the figures of
# benchmarks/README.md:
#
#   1. the headline ratios with real binaries, durable storage (pebble in a
#      temporary directory) and `bank bench` (closed loop, 64 workers):
#      getSaldo/status on the data server, and successful transfers/s
#      through three business servers over the same /status; median of 3
#      rounds; then getSaldo and transfers in the open loop at half their
#      median peak rate, p99 against the targets (go run ./benchmarks/ratios;
#      -baseline DIR adds a before/after, -profile DIR CPU profiles);
#   2. the Go benchmarks per layer (layers_test.go) and, with --all, the
#      durability ones (durability_test.go), -count 3.
#
# Usage: benchmarks/run.sh [--all] [flags of ./benchmarks/ratios]
# Run from anywhere; it works in the module's root. Compare figures of one
# run only: shared machines drift by up to 2x over minutes.
set -eu
cd "$(dirname "$0")/.."
all=0
if [ "${1:-}" = "--all" ]; then all=1; shift; fi

echo "== ratios: go run ./benchmarks/ratios $*"
go run ./benchmarks/ratios "$@"

echo
echo "== layers: go test -run '^\$' -bench 'Loopback|Transfer' -count 3 ./benchmarks/"
go test -run '^$' -bench 'Loopback|Transfer' -count 3 ./benchmarks/

echo
echo "== data server hot path in-process: go test -run '^\$' -bench GetSaldoHandler -count 3 ./http/dataserver/"
go test -run 'TestHotPathAllocs' -v -bench GetSaldoHandler -count 3 ./http/dataserver/ | grep -E 'allocations per|Benchmark|ok'

echo
echo "== metrics overhead: go test -run '^\$' -bench Wrap -count 3 ./http/metrics/"
go test -run '^$' -bench Wrap -count 3 ./http/metrics/

if [ "$all" = 1 ]; then
	echo
	echo "== every layer: go test -run '^\$' -bench 'AccountRules|LockUnlock|ActorRoundTrip' -count 3 ./benchmarks/"
	go test -run '^$' -bench 'AccountRules|LockUnlock|ActorRoundTrip' -count 3 ./benchmarks/
	echo
	echo "== durability: go test -run '^\$' -bench Durability -count 3 ./benchmarks/"
	go test -run '^$' -bench Durability -count 3 ./benchmarks/
fi
