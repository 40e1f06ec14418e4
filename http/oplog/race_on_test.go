//go:build race

package oplog

// raceEnabled exists because sync.Pool deliberately drops items under the
// race detector, which makes allocation counts meaningless there.
const raceEnabled = true
