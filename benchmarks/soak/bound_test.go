package soak

import (
	"testing"
)

func TestSizeBound(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		bound         string
		before, after int64
		exceeded      bool
	}{
		{"64MiB", 30 * mib, 30 * mib, false},
		{"64MiB", 30 * mib, 94 * mib, false}, // exactly the bound
		{"64MiB", 30 * mib, 94*mib + 1, true},
		{"64MiB", 30 * mib, 10 * mib, false}, // shrinking
		{"50%", 40 * mib, 60 * mib, false},
		{"50%", 40 * mib, 60*mib + 1, true},
		{"10%", 100, 111, true},
		{"1048576", 0, mib, false},
		{"1048576", 0, mib + 1, true},
		{"1KiB", 0, 1025, true},
	} {
		b, err := ParseSizeBound(tc.bound)
		if err != nil {
			t.Fatalf("ParseSizeBound(%q): %v", tc.bound, err)
		}
		if got := b.exceeded(tc.before, tc.after); got != tc.exceeded {
			t.Errorf("%s: %d -> %d: exceeded = %v, want %v", tc.bound, tc.before, tc.after, got, tc.exceeded)
		}
	}
	for _, bad := range []string{"", "x", "-1MiB", "0", "0%", "-5%", "12XB", "NaN%"} {
		if _, err := ParseSizeBound(bad); err == nil {
			t.Errorf("ParseSizeBound(%q): no error", bad)
		}
	}
}

func TestGoroutineBound(t *testing.T) {
	for _, tc := range []struct {
		max, before, after int64
		exceeded           bool
	}{
		{200, 30, 30, false},
		{200, 30, 230, false},
		{200, 30, 231, true},
		{0, 30, 31, true},
		{0, 30, 29, false},
	} {
		if got := goroutinesExceeded(tc.max, tc.before, tc.after); got != tc.exceeded {
			t.Errorf("max %d: %d -> %d: exceeded = %v, want %v", tc.max, tc.before, tc.after, got, tc.exceeded)
		}
	}
}
