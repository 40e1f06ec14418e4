package loadgen

import "testing"

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
	}
}
