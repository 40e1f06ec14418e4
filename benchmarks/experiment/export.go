package experiment

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// column is one field of a cell in the CSV and the JSON.
type column struct {
	name  string
	value func(r *Result) any // string, bool, int, int64, float64 (NaN: none) or map[string]int64
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// columns lists every figure of a cell, in CSV order.
var columns = func() []column {
	cs := []column{
		{"index", func(r *Result) any { return r.Index }},
		{"transport", func(r *Result) any { return string(r.Transport) }},
		{"store", func(r *Result) any { return string(cmp.Or(r.Store, StoreMemory)) }},
		{"policy", func(r *Result) any { return string(r.Policy) }},
		{"order", func(r *Result) any { return string(r.Order) }},
		{"skew", func(r *Result) any { return r.Skew.Spec }},
		{"theta", func(r *Result) any { return r.Skew.ThetaValue() }},
		{"servers", func(r *Result) any { return r.Servers }},
		{"workers", func(r *Result) any { return r.Workers }},
		{"legs", func(r *Result) any { return r.Legs }},
		{"groups", func(r *Result) any { return r.Verdict.Groups }},
		{"verdict", func(r *Result) any { return r.Verdict.Text() }},
		{"bank_check", func(r *Result) any { return r.Verdict.Bank }},
		{"linearizability", func(r *Result) any { return r.Verdict.Linearizability }},
		{"conservation", func(r *Result) any { return r.Verdict.Conservation }},
		{"reason", func(r *Result) any { return r.Verdict.Reason }},
		{"duration_s", func(r *Result) any { return r.Seconds }},
		{"requests", func(r *Result) any { return r.Requests }},
		{"commits", func(r *Result) any { return r.Commits }},
		{"commits_per_s", func(r *Result) any { return r.CommitsPerSec }},
		{"ok_transfers_per_s", func(r *Result) any { return r.OKTransfersPerSec }},
		{"total_per_s", func(r *Result) any { return r.TotalPerSec }},
		{"p50_us", func(r *Result) any { return r.P50 }},
		{"p99_us", func(r *Result) any { return r.P99 }},
		{"p999_us", func(r *Result) any { return r.P999 }},
		{"aborts", func(r *Result) any { return r.AbortsTotal }},
		{"abort_rate", func(r *Result) any { return r.AbortRate }},
		{"aborts_per_commit", func(r *Result) any { return r.AbortsPerCommit }},
		{"attempts_per_commit", func(r *Result) any { return r.AttemptsPerCommit }},
	}
	for _, c := range Causes {
		cs = append(cs, column{"aborts_" + string(c), func(r *Result) any { return r.Aborts[c] }})
	}
	return append(cs, []column{
		{"lock_waits", func(r *Result) any { return r.LockWaits }},
		{"lock_wait_mean_us", func(r *Result) any { return float64(r.LockWait) / 1e3 }},
		{"lock_wait_total_s", func(r *Result) any { return seconds(r.LockWaitTotal) }},
		{"deadlocks", func(r *Result) any { return r.Deadlocks }},
		{"deadlock_resolved_us", func(r *Result) any { return float64(r.DeadlockResolved) / 1e3 }},
		{"deadlock_max_us", func(r *Result) any { return float64(r.DeadlockMax) / 1e3 }},
		{"insufficient_funds", func(r *Result) any { return r.Insufficient }},
		{"other_errors", func(r *Result) any { return r.Other }},
		{"other_detail", func(r *Result) any { return r.OtherDetail }},
		{"history_ops", func(r *Result) any { return r.Verdict.HistoryOps }},
		{"history_snapshots", func(r *Result) any { return r.Verdict.HistorySnapshots }},
		{"history_file", func(r *Result) any { return r.Verdict.History }},
		{"check_s", func(r *Result) any { return seconds(r.Verdict.CheckTime) }},
		{"setup_s", func(r *Result) any { return seconds(r.Setup) }},
		{"wall_s", func(r *Result) any { return seconds(r.Wall) }},
		{"interrupted", func(r *Result) any { return r.Interrupted }},
		{"error", func(r *Result) any {
			if r.Err != nil {
				return r.Err.Error()
			}
			return ""
		}},
	}...)
}()

// csvText renders a value for the CSV: NaN as an empty field, a map as
// "key=n;key=n" in key order.
func csvText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case map[string]int64:
		parts := make([]string, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+"="+strconv.FormatInt(x[k], 10))
		}
		return strings.Join(parts, ";")
	}
	return fmt.Sprint(v)
}

// WriteCSV writes a header and one row per cell.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	row := make([]string, len(columns))
	for i, c := range columns {
		row[i] = c.name
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	for i := range results {
		for j, c := range columns {
			row[j] = csvText(c.value(&results[i]))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cellJSON encodes one cell as an object with the columns in CSV order
// (NaN as null).
func cellJSON(r *Result) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range columns {
		if i > 0 {
			b.WriteByte(',')
		}
		v := c.value(r)
		if f, ok := v.(float64); ok {
			v = number(f)
		}
		k, _ := json.Marshal(c.name)
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// WriteJSON writes {"meta": {...}, "cells": [...]}: the run's metadata
// (command, date, machine, Go version, the grid and the settings) and one
// object per cell with the CSV's columns.
func WriteJSON(w io.Writer, meta Meta, results []Result) error {
	proven := 0
	for i := range results {
		if !results[i].Failed() {
			proven++
		}
	}
	skews := make([]string, len(meta.Grid.Skews))
	for i, sk := range meta.Grid.Skews {
		skews[i] = sk.Spec
	}
	s := meta.Settings
	m := map[string]any{
		"name": meta.Name, "command": meta.Command, "date": meta.Date.Format(time.RFC3339),
		"num_cpu": meta.NumCPU, "gomaxprocs": meta.GOMAXPROCS, "go_version": meta.GoVersion, "os_arch": meta.OSArch,
		"wall_s": meta.Wall.Seconds(), "cells_planned": meta.Cells, "cells_run": len(results),
		"cells_proven": proven, "cells_failed": len(results) - proven, "interrupted": meta.Interrupted,
		"load_before": meta.LoadBefore, "load_after": meta.LoadAfter, "plots": meta.Plots,
		"grid": map[string]any{
			"transports": meta.Grid.transports(), "policies": meta.Grid.Policies, "orders": meta.Grid.Orders,
			"skews": skews, "servers": meta.Grid.Servers, "workers": meta.Grid.Workers, "legs": meta.Grid.legs(),
		},
		"settings": map[string]any{
			"duration_s": s.Duration.Seconds(), "inprocess_duration_s": s.InprocessDuration.Seconds(), "accounts": s.Accounts, "initial_balance": s.InitialBalance,
			"mix": s.Mix, "amount_min": s.AmountMin, "amount_max": s.AmountMax,
			"lock_wait_s": s.LockWait.Seconds(), "lease_s": s.Lease.Seconds(), "timeout_s": s.Timeout.Seconds(),
			"seed": s.Seed, "workers_per_group": s.WorkersPerGroup, "snapshot_every_s": s.SnapshotEvery.Seconds(),
			"linear_timeout_s": s.LinearTimeout.Seconds(),
		},
	}
	head, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("{\n  \"meta\": ")
	b.Write(head)
	b.WriteString(",\n  \"cells\": [")
	for i := range results {
		if i > 0 {
			b.WriteByte(',')
		}
		c, err := cellJSON(&results[i])
		if err != nil {
			return fmt.Errorf("cell %d: %w", results[i].Index, err)
		}
		b.WriteString("\n    ")
		b.Write(c)
	}
	b.WriteString("\n  ]\n}\n")
	_, err = w.Write(b.Bytes())
	return err
}
