package loadgen

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// chiSquare compares observed counts of ranks 1..n (obs[k-1]) with the
// Zipf probabilities 1/k^s.
func chiSquare(obs []int, s float64) float64 {
	var norm float64
	for k := 1; k <= len(obs); k++ {
		norm += math.Pow(float64(k), -s)
	}
	total := 0
	for _, o := range obs {
		total += o
	}
	var chi float64
	for k := 1; k <= len(obs); k++ {
		exp := float64(total) * math.Pow(float64(k), -s) / norm
		d := float64(obs[k-1]) - exp
		chi += d * d / exp
	}
	return chi
}

func TestZipfFollowsPowerLaw(t *testing.T) {
	const samples = 200_000
	for _, tc := range []struct {
		n int
		s float64
	}{
		{10, 0.99}, {50, 0.99}, {10, 1.2}, {50, 1.2}, {20, 0.5}, {20, 1.0}, {1000, 0.99},
	} {
		r := rand.New(rand.NewPCG(42, uint64(tc.n)))
		z := newZipf(int64(tc.n), tc.s)
		obs := make([]int, tc.n)
		for range samples {
			k := z.pick(r)
			if k < 1 || k > int64(tc.n) {
				t.Fatalf("n=%d s=%v: rank %d out of range", tc.n, tc.s, k)
			}
			obs[k-1]++
		}
		df := float64(tc.n - 1)
		// About a 1-in-10^5 tail for these df; the seed is fixed, so this
		// catches a wrong distribution without ever flaking.
		limit := df + 6*math.Sqrt(2*df)
		if chi := chiSquare(obs, tc.s); chi > limit {
			t.Errorf("n=%d s=%v: chi-square %.1f > %.1f (df %v); counts of the first ranks %v", tc.n, tc.s, chi, limit, df, obs[:min(5, tc.n)])
		}
		// The head must be as heavy as the law says: rank 1 over rank 2 is 2^s.
		if ratio, want := float64(obs[0])/float64(obs[1]), math.Pow(2, tc.s); math.Abs(ratio-want)/want > 0.05 {
			t.Errorf("n=%d s=%v: count(1)/count(2) = %.3f, want %.3f ± 5%%", tc.n, tc.s, ratio, want)
		}
	}
}

func TestHotSetFraction(t *testing.T) {
	const samples = 100_000
	for _, tc := range []struct {
		k, n int
		p    float64
	}{
		{2, 10, 0.9}, {1, 100, 0.5}, {10, 1000, 0.99}, {3, 10, 0},
	} {
		r := rand.New(rand.NewPCG(7, 0))
		h, err := newPicker(Dist{Kind: DistHot, HotK: tc.k, HotP: tc.p}, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		hot := 0
		seen := map[int64]bool{}
		for range samples {
			a := h.pick(r)
			if a < 1 || a > int64(tc.n) {
				t.Fatalf("hot:%d:%v over %d: account %d out of range", tc.k, tc.p, tc.n, a)
			}
			if a <= int64(tc.k) {
				hot++
			}
			seen[a] = true
		}
		if got := float64(hot) / samples; math.Abs(got-tc.p) > 0.01 {
			t.Errorf("hot:%d:%v over %d: hot fraction %.4f, want %.2f ± 0.01", tc.k, tc.p, tc.n, got, tc.p)
		}
		// Within each set the choice is uniform: with this many samples,
		// every account of a set that gets picks at all is picked.
		for a := 1; tc.n <= 100 && a <= tc.n; a++ {
			inHot := a <= tc.k
			if (inHot && tc.p > 0 || !inHot && tc.p < 1) && !seen[int64(a)] {
				t.Errorf("hot:%d:%v over %d: account %d never picked", tc.k, tc.p, tc.n, a)
			}
		}
	}
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]int
		wantErr string
	}{
		{in: DefaultBusinessMix, want: map[string]int{"deposito": 20, "saque": 20, "transferencia": 50, "saldo": 10}},
		{in: " saldo = 3 , deposito=0 ", want: map[string]int{"saldo": 3, "deposito": 0}},
		{in: DefaultDataMix, want: map[string]int{"getSaldo": 50, "lock": 30, "setSaldo": 20}},
		{in: "", wantErr: "empty"},
		{in: "deposito", wantErr: "want OP=WEIGHT"},
		{in: "=5", wantErr: "want OP=WEIGHT"},
		{in: "withdraw=5", wantErr: `unknown op "withdraw"`},
		{in: "saldo=-1", wantErr: "not a non-negative integer"},
		{in: "saldo=x", wantErr: "not a non-negative integer"},
		{in: "saldo=1.5", wantErr: "not a non-negative integer"},
		{in: "saldo=1,saldo=2", wantErr: "given twice"},
		{in: "saldo=0,saque=0", wantErr: "every weight is zero"},
		{in: "saldo=1,", wantErr: "want OP=WEIGHT"},
		{in: "saldo=99999999", wantErr: "too large"},
	} {
		got, err := ParseMix(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseMix(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseMix(%q)[%s] = %d, want %d", tc.in, k, got[k], v)
			}
		}
	}
}

func TestParseDist(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Dist
		wantErr string
	}{
		{in: "uniform", want: Dist{Kind: DistUniform}},
		{in: "", want: Dist{Kind: DistUniform}},
		{in: "zipf:0.99", want: Dist{Kind: DistZipf, S: 0.99}},
		{in: "zipf:1.2", want: Dist{Kind: DistZipf, S: 1.2}},
		{in: "hot:2:0.9", want: Dist{Kind: DistHot, HotK: 2, HotP: 0.9}},
		{in: "hot:1:1", want: Dist{Kind: DistHot, HotK: 1, HotP: 1}},
		{in: "zipf", wantErr: "want zipf:S"},
		{in: "zipf:0", wantErr: "(0, 100]"},
		{in: "zipf:-1", wantErr: "(0, 100]"},
		{in: "zipf:NaN", wantErr: "(0, 100]"},
		{in: "zipf:abc", wantErr: "(0, 100]"},
		{in: "zipf:1:2", wantErr: "want zipf:S"},
		{in: "hot:2", wantErr: "want hot:K:P"},
		{in: "hot:0:0.5", wantErr: "K must be a positive integer"},
		{in: "hot:x:0.5", wantErr: "K must be a positive integer"},
		{in: "hot:2:1.5", wantErr: "P must be a fraction"},
		{in: "hot:2:-0.1", wantErr: "P must be a fraction"},
		{in: "uniform:3", wantErr: "no parameter"},
		{in: "pareto:1", wantErr: "want uniform, zipf:S or hot:K:P"},
	} {
		got, err := ParseDist(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDist(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDist(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if back, err := ParseDist(got.String()); err != nil || back != got {
			t.Errorf("ParseDist(%q).String() = %q does not parse back: %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestDistAgainstAccounts(t *testing.T) {
	for _, tc := range []struct {
		d        Dist
		accounts int
		wantErr  string
	}{
		{Dist{Kind: DistHot, HotK: 10, HotP: 0.5}, 10, "K must be in 1..9"},
		{Dist{Kind: DistHot, HotK: 9, HotP: 0.5}, 10, ""},
		{Dist{Kind: DistZipf, S: 0.99}, 1, ""},
		{Dist{}, 0, "want at least 1"},
	} {
		_, err := newPicker(tc.d, tc.accounts)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("newPicker(%v, %d) = %v; want error %q", tc.d, tc.accounts, err, tc.wantErr)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int64
		ok     bool
	}{
		{"1..100", 1, 100, true}, {"5", 5, 5, true}, {" 2 .. 3 ", 2, 3, true},
		{"0..5", 0, 0, false}, {"5..1", 0, 0, false}, {"a..b", 0, 0, false}, {"", 0, 0, false},
		{"1..", 0, 0, false}, {"-3..4", 0, 0, false}, {"1..99999999999999", 0, 0, false},
	} {
		lo, hi, err := parseAmount(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (lo != tc.lo || hi != tc.hi)) {
			t.Errorf("parseAmount(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, lo, hi, err, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestPlannerMixTransfersAndSeed(t *testing.T) {
	mix, err := ParseMix(DefaultBusinessMix)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dist{{}, {Kind: DistZipf, S: 0.99}, {Kind: DistHot, HotK: 1, HotP: 1}} {
		pl, err := newPlanner(TargetBusiness, mix, d, 10, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		r1, r2 := rand.New(rand.NewPCG(9, 1)), rand.New(rand.NewPCG(9, 1))
		var counts [numOps]int
		const n = 50_000
		for range n {
			p, q := pl.next(r1), pl.next(r2)
			if !reflect.DeepEqual(p, q) || p.batch != nil {
				t.Fatalf("%v: same seed, different operations: %+v vs %+v", d, p, q)
			}
			counts[p.op]++
			if p.a < 1 || p.a > 10 || p.amount < 1 || p.amount > 100 {
				t.Fatalf("%v: out of range: %+v", d, p)
			}
			if p.op == opTransferencia && (p.b == p.a || p.b < 1 || p.b > 10) {
				t.Fatalf("%v: transfer between %d and %d", d, p.a, p.b)
			}
		}
		for name, w := range mix {
			o, _ := opByName(name)
			if got := float64(counts[o]) / n; math.Abs(got-float64(w)/100) > 0.01 {
				t.Errorf("%v: %s share %.3f, want %.2f", d, name, got, float64(w)/100)
			}
		}
	}
}

// TestPlannerBatch: with batches, a transferencia carries Batch transfers,
// the first its own, each drawn as a single one is; the sequence is still
// the seed's; a buffer given is reused; regroup keeps every transfer of a
// batch within the group.
func TestPlannerBatch(t *testing.T) {
	mix, err := ParseMix("deposito=1,transferencia=3")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := newPlanner(TargetBusiness, mix, Dist{Kind: DistZipf, S: 0.99}, 10, 5, 50)
	if err != nil {
		t.Fatal(err)
	}
	pl.batch = 7
	r1, r2 := rand.New(rand.NewPCG(3, 1)), rand.New(rand.NewPCG(3, 1))
	buf := make([]xfer, 0, 7)
	batches := 0
	for range 2000 {
		p, q := pl.nextInto(r1, buf), pl.next(r2)
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("same seed, different operations: %+v vs %+v", p, q)
		}
		if p.op != opTransferencia {
			if p.batch != nil {
				t.Fatalf("a %v with a batch", p.op)
			}
			continue
		}
		batches++
		if len(p.batch) != 7 || p.batch[0] != (xfer{p.a, p.b, p.amount}) || &p.batch[0] != &buf[:1][0] {
			t.Fatalf("batch %+v of %+v (buffer reused: %v)", p.batch, p, &p.batch[0] == &buf[:1][0])
		}
		for _, x := range p.batch {
			if x.a < 1 || x.a > 10 || x.b < 1 || x.b > 10 || x.a == x.b || x.amount < 5 || x.amount > 50 {
				t.Fatalf("transfer %+v", x)
			}
		}
		for g := range 3 {
			c := p
			c.batch = append([]xfer(nil), p.batch...)
			regroup(&c, g, 10, 3)
			lo, hi := groupBounds(g, 10, 3)
			for _, x := range c.batch {
				if x.a < lo || x.a > hi || x.b < lo || x.b > hi || x.a == x.b {
					t.Fatalf("group %d (%d..%d): transfer %+v", g, lo, hi, x)
				}
			}
			if c.batch[0].a != c.a || c.batch[0].b != c.b {
				t.Fatalf("group %d: batch %+v, operation %+v", g, c.batch, c)
			}
		}
	}
	if batches < 1000 {
		t.Errorf("%d batches of 2000 operations", batches)
	}
}

func TestPlannerRejects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		target   Target
		mix      map[string]int
		accounts int
		amin     int64
		wantErr  string
	}{
		{"data op on business", TargetBusiness, map[string]int{"getSaldo": 1}, 10, 1, "not served by the business target"},
		{"business op on data", TargetData, map[string]int{"deposito": 1}, 10, 1, "not served by the data target"},
		{"transfer with one account", TargetBusiness, map[string]int{"transferencia": 1}, 1, 1, "two distinct accounts"},
		{"zero weights", TargetBusiness, map[string]int{"saldo": 0}, 10, 1, "every weight is zero"},
		{"zero amount", TargetBusiness, map[string]int{"saldo": 1}, 10, 0, "amount"},
	} {
		if _, err := newPlanner(tc.target, tc.mix, Dist{}, tc.accounts, tc.amin, 100); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}
