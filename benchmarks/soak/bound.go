package soak

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SizeBound bounds a growth: by bytes, or by a percentage of the start.
type SizeBound struct {
	bytes   int64
	percent float64 // used when > 0
}

func (b SizeBound) String() string {
	if b.percent > 0 {
		return strconv.FormatFloat(b.percent, 'f', -1, 64) + "%"
	}
	return formatBytes(b.bytes)
}

// exceeded reports whether growing from before to after exceeds b.
func (b SizeBound) exceeded(before, after int64) bool {
	growth := after - before
	if b.percent > 0 {
		return float64(growth) > float64(before)*b.percent/100
	}
	return growth > b.bytes
}

// goroutinesExceeded reports whether goroutines grew by more than max.
func goroutinesExceeded(max, before, after int64) bool { return after-before > max }

// ParseSizeBound parses "64MiB", "512KiB", "1GiB", "1048576" or "50%".
func ParseSizeBound(s string) (SizeBound, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return SizeBound{}, fmt.Errorf("%q: want a positive percentage", s)
		}
		return SizeBound{percent: v}, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if p, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = p, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/mult {
		return SizeBound{}, fmt.Errorf("%q: want a size such as 64MiB, or a percentage such as 50%%", s)
	}
	return SizeBound{bytes: v * mult}, nil
}

func formatBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + formatBytes(-n)
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
