//go:build !unix

package store

// diskSpace cannot tell here: the reserve is not enforced.
func diskSpace(string) (free, total uint64, ok bool) { return 0, 0, false }
