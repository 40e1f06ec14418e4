// Package benchmarks measures the bank layer by layer: the account rules,
// an actor round trip, a data-server route over loopback and a business
// transfer over loopback, each beside a fasthttp handler that returns a
// constant, so that figures from one run can be read as ratios on a shared,
// noisy machine. Run: go test -run '^$' -bench . ./benchmarks/
package benchmarks
