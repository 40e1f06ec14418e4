package soak

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSoakScheduleIsTheSeeds(t *testing.T) {
	all, err := ParseFaults("all", 3)
	if err != nil {
		t.Fatal(err)
	}
	a := Plan(42, 40, 20*time.Second, 3, all)
	b := Plan(42, 40, 20*time.Second, 3, all)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two schedules from seed 42 differ:\n%v\n%v", a, b)
	}
	// The order in which the kinds are given does not matter.
	rev := slices.Clone(all)
	slices.Reverse(rev)
	if c := Plan(42, 40, 20*time.Second, 3, rev); !reflect.DeepEqual(a, c) {
		t.Fatal("the schedule depends on the order of --faults")
	}
	if c := Plan(43, 40, 20*time.Second, 3, all); reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 give the same schedule")
	}
}

func TestSoakScheduleBounds(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		kinds, err := ParseFaults("all", nodes)
		if err != nil {
			t.Fatal(err)
		}
		const round = 20 * time.Second
		for seed := range uint64(20) {
			plan := Plan(seed, 3*len(kinds), round, nodes, kinds)
			// Each pass of len(kinds) rounds deals every kind once.
			for pass := range 3 {
				var seen []FaultKind
				for _, f := range plan[pass*len(kinds) : (pass+1)*len(kinds)] {
					seen = append(seen, f.Kind)
				}
				slices.Sort(seen)
				if !slices.Equal(seen, kinds) {
					t.Fatalf("nodes %d seed %d pass %d: kinds %v, want each of %v once", nodes, seed, pass, seen, kinds)
				}
			}
			for i, f := range plan {
				info := faultCatalogue[f.Kind]
				if f.Round != i+1 {
					t.Errorf("fault %d is for round %d", i, f.Round)
				}
				if f.At < round/8 || f.At > round/3 {
					t.Errorf("%v: starts outside [1/8, 1/3] of the round", f)
				}
				if info.maxFor > 0 && (f.For < info.minFor || f.For > info.maxFor || f.At+f.For > round*3/4) {
					t.Errorf("%v: lasts outside [%v, %v] or past 3/4 of the round", f, info.minFor, info.maxFor)
				}
				if info.maxFor == 0 && f.For != 0 {
					t.Errorf("%v: an instantaneous fault with a duration", f)
				}
				if f.Jitter > f.Latency {
					t.Errorf("%v: jitter above the latency", f)
				}
				if f.Kind == FaultLateWrites && f.Latency-f.Jitter <= soakLease {
					t.Errorf("%v: not past the lease %v", f, soakLease)
				}
				want := map[bool][]string{false: {"data"}, true: {"m1", "m2", "m3"}}[nodes > 1]
				switch {
				case info.targetsBiz:
					want = []string{"biz1", "biz2"}
				case f.Kind == FaultKillBiz:
					want = []string{"biz1"}
				case f.Kind == FaultStopBiz:
					want = []string{"biz2"} // never restarted: it is the soak's leak witness
				}
				if !slices.Contains(want, f.Target) {
					t.Errorf("%v: target %q, want one of %v", f, f.Target, want)
				}
			}
		}
	}
}

func TestParseFaultSet(t *testing.T) {
	for _, tc := range []struct {
		arg   string
		nodes int
		want  []FaultKind // nil: an error
	}{
		{"process", 1, []FaultKind{FaultKillBiz, FaultKillData, FaultStopBiz}},
		{"late-writes, kill-data,late-writes", 1, []FaultKind{FaultKillData, FaultLateWrites}},
		{"part-pg", 3, []FaultKind{FaultPartPG}},
		{"part-pg", 1, nil},
		{"bogus", 1, nil},
		{"", 1, nil},
	} {
		got, err := ParseFaults(tc.arg, tc.nodes)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseFaults(%q, %d) = %v, want an error", tc.arg, tc.nodes, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseFaults(%q, %d) = %v, %v; want %v", tc.arg, tc.nodes, got, err, tc.want)
		}
	}
	single, _ := ParseFaults("all", 1)
	cluster, _ := ParseFaults("all", 2)
	net, _ := ParseFaults("net", 1)
	if len(cluster) != len(faultCatalogue) || len(single) != len(faultCatalogue)-3 || len(net) != len(single)-3 {
		t.Errorf("all: %d kinds single, %d cluster, net %d; catalogue %d", len(single), len(cluster), len(net), len(faultCatalogue))
	}
	for _, k := range net {
		if !faultCatalogue[k].net {
			t.Errorf("net includes %s", k)
		}
	}
}

func TestPlannedFaultString(t *testing.T) {
	f := PlannedFault{Round: 2, Kind: FaultLateWrites, Target: "biz1", At: 1500 * time.Millisecond, For: 2 * time.Second,
		Latency: 1300 * time.Millisecond, Jitter: 50 * time.Millisecond}
	if got, want := f.String(), "late-writes biz1 at +1.5s for 2s latency 1.3s±50ms"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
