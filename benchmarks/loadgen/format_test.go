package loadgen

import (
	"testing"
	"time"
)

// TestFormatMicros pins the one latency format of the benchmarks' reports
// at each magnitude and boundary.
func TestFormatMicros(t *testing.T) {
	for _, tt := range []struct {
		us   int64
		want string
	}{
		{0, "0us"},
		{999, "999us"},
		{1000, "1.00ms"},
		{1234, "1.23ms"},
		{12_345, "12.35ms"},
		{999_999, "1000.00ms"},
		{1_000_000, "1.00s"},
		{61_500_000, "61.50s"},
	} {
		if got := FormatMicros(tt.us); got != tt.want {
			t.Errorf("FormatMicros(%d) = %q, want %q", tt.us, got, tt.want)
		}
		if got := FormatDuration(time.Duration(tt.us) * time.Microsecond); tt.us > 0 && got != tt.want {
			t.Errorf("FormatDuration(%dµs) = %q, want %q", tt.us, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{-time.Second: "0", 0: "0", 999: "<1us", 1500: "1us"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
