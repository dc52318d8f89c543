package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

const rowFormat = "%-8s  %-22s  %-6s  %7s  %8s  %9s  %9s  %6s  %8s  %9s  %8s  %6s  %9s  %s\n"

func printHeader(w io.Writer) {
	fmt.Fprintf(w, rowFormat, "db", "dataset", "op", "clients", "ops/s", "p50", "p99", "errors", "peak RSS", "srv cores", "pg cores", "other", "GET p50", "errors by cause")
}

func printRow(w io.Writer, r *runResult) {
	fmt.Fprintf(w, rowFormat, r.DB, r.Dataset, r.Op, fmt.Sprint(r.Clients),
		fmt.Sprintf("%.1f", r.OpsPerSec), fmtMs(r.P50ms), fmtMs(r.P99ms), fmt.Sprint(r.Errors),
		fmt.Sprintf("%.0f MB", r.PeakRSSMB), fmt.Sprintf("%.2f", r.ServerCores), fmt.Sprintf("%.2f", r.PostgresCores), fmt.Sprintf("%.2f", r.OtherCores), fmtMs(r.GetP50ms), errorsBy(r.ErrorsBy))
}

func fmtMs(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func errorsBy(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func printSeed(w io.Writer, s seedReport) {
	fmt.Fprintf(w, "seeded %s (%s): %d tenants, %d users, %d audit events in %.1fs "+
		"(migrate + built-in tenants %.1fs, one argon2id hash %.2fs, inserts %.1fs = %.0f users/s, %s %.1fs); database %.0f MB\n",
		s.DB, s.Dataset, s.Tenants, s.Users, s.AuditEvents, s.TotalSecs, s.MigrateSecs, s.HashSecs, s.InsertSecs,
		s.UsersPerSec, map[bool]string{true: "ANALYZE", false: "WAL checkpoint"}[s.DB == "postgres"], s.FinishSecs, s.SizeMB)
}

// targetCheck compares one figure with one target of the issue.
type targetCheck struct {
	Target string  `json:"target"`
	DB     string  `json:"db"`
	Data   string  `json:"dataset"`
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

// checkTargets reports, per (db, dataset): the best login throughput against
// 75/s, and the 256-client runs' errors and peak RSS.
func checkTargets(runs []*runResult) []targetCheck {
	var out []targetCheck
	type key struct{ db, ds, op string }
	best := map[key]float64{}
	var order []key
	for _, r := range runs {
		k := key{r.DB, r.Dataset, r.Op}
		if _, ok := best[k]; !ok {
			order = append(order, k)
		}
		best[k] = max(best[k], r.OpsPerSec)
	}
	for _, k := range order {
		if k.op == "login" {
			v := best[k]
			out = append(out, targetCheck{Target: fmt.Sprintf(">= %.0f logins/s (best level)", targetLoginsPerSec), DB: k.db, Data: k.ds, Op: k.op, Value: v, Met: v >= targetLoginsPerSec})
		}
		for _, r := range runs {
			if r.DB != k.db || r.Dataset != k.ds || r.Op != k.op || r.Clients != targetClients {
				continue
			}
			out = append(out,
				targetCheck{Target: fmt.Sprintf("0 errors at %d clients", targetClients), DB: r.DB, Data: r.Dataset, Op: r.Op, Value: float64(r.Errors), Met: r.Errors == 0},
				targetCheck{Target: fmt.Sprintf("peak RSS < %.0f MB at %d clients", targetMaxRSSMB, targetClients), DB: r.DB, Data: r.Dataset, Op: r.Op, Value: r.PeakRSSMB, Met: r.PeakRSSMB >= 0 && r.PeakRSSMB < targetMaxRSSMB})
		}
	}
	return out
}

func printSummary(w io.Writer, rep *report) {
	fmt.Fprintln(w, "=== Results ===")
	fmt.Fprintln(w, "ops/s: completed operations (GET form + POST) per second; p50/p99: latency of the POST alone;")
	fmt.Fprintln(w, "peak RSS: server VmHWM after the level (levels run in increasing order, server restarted per db/dataset/op);")
	fmt.Fprintln(w, "srv cores: server CPU seconds per second during the window (client and server share the machine);")
	fmt.Fprintln(w, "pg cores: CPU of all processes named postgres; other: cores used by anything else but server, load")
	fmt.Fprintln(w, "generator and postgres during the window (more than ~0.1: the run was disturbed by other work).")
	fmt.Fprintln(w)
	printHeader(w)
	for _, r := range rep.Runs {
		printRow(w, r)
	}
	if len(rep.Seeding) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Seeding:")
		for _, s := range rep.Seeding {
			fmt.Fprint(w, "  ")
			printSeed(w, s)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Targets (reported, not asserted):")
		for _, t := range rep.Targets {
			verdict := "MET"
			if !t.Met {
				verdict = "MISSED"
			}
			val := fmt.Sprintf("%.1f", t.Value)
			switch {
			case strings.Contains(t.Target, "RSS"):
				val += " MB"
			case strings.Contains(t.Target, "errors"):
				val = fmt.Sprintf("%.0f errors", t.Value)
			default:
				val += "/s"
			}
			fmt.Fprintf(w, "  %-6s  %-36s  %-8s  %-22s  %-6s  %s\n", verdict, t.Target, t.DB, t.Data, t.Op, val)
		}
	}
	for _, n := range rep.Notices {
		fmt.Fprintln(w, "NOTICE:", n)
	}
	fmt.Fprintf(w, "\ntotal time %.0fs\n", rep.TotalSecs)
}
