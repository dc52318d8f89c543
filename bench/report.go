package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

const rowFormat = "%-8s  %-22s  %-10s  %7s  %8s  %9s  %9s  %6s  %8s  %9s  %9s  %8s  %9s  %6s  %9s  %s\n"

func printHeader(w io.Writer) {
	fmt.Fprintf(w, rowFormat, "db", "dataset", "op", "clients", "ops/s", "p50", "p99", "errors", "peak RSS", "srv cores", "srv CPU/op", "pg cores", "gen cores", "other", "GET p50", "errors by cause")
}

func printRow(w io.Writer, r *runResult) {
	getP50 := "-"
	if r.GetP50ms > 0 {
		getP50 = fmtMs(r.GetP50ms)
	}
	fmt.Fprintf(w, rowFormat, r.DB, r.Dataset, r.Op, fmt.Sprint(r.Clients),
		fmt.Sprintf("%.1f", r.OpsPerSec), fmtMs(r.P50ms), fmtMs(r.P99ms), fmt.Sprint(r.Errors),
		fmt.Sprintf("%.0f MB", r.PeakRSSMB), fmt.Sprintf("%.2f", r.ServerCores), fmtCPU(r.ServerCPUms), fmt.Sprintf("%.2f", r.PostgresCores),
		fmt.Sprintf("%.2f", r.ClientCores), fmt.Sprintf("%.2f", r.OtherCores), getP50, errorsBy(r.ErrorsBy))
}

func fmtMs(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// fmtCPU writes CPU time per operation: microseconds below a millisecond.
func fmtCPU(msPerOp float64) string {
	switch {
	case msPerOp <= 0:
		return "-"
	case msPerOp < 1:
		return fmt.Sprintf("%.0f µs", msPerOp*1000)
	}
	return fmt.Sprintf("%.1f ms", msPerOp)
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

// opTargets are the throughput targets of the issues: operations per second
// on the 2-core machine, for the best level of each (db, dataset, op).
var opTargets = map[string]struct {
	perSec float64
	what   string
}{
	"login":      {targetLoginsPerSec, "logins"},
	"cc":         {6000, "client_credentials tokens"},
	"introspect": {10000, "introspections"},
	"userinfo":   {10000, "userinfo requests"},
	"discovery":  {20000, "discovery documents"},
	"jwks":       {20000, "JWKS documents"},
	"refresh":    {3000, "refresh rotations"},
	"code":       {1000, "code round trips"},
}

// checkTargets reports, per (db, dataset, op): the best throughput against
// the op's target, and for the pages the 256-client runs' errors and peak RSS.
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
		if t, ok := opTargets[k.op]; ok {
			v := best[k]
			out = append(out, targetCheck{Target: fmt.Sprintf(">= %.0f %s/s (best level)", t.perSec, t.what), DB: k.db, Data: k.ds, Op: k.op, Value: v, Met: v >= t.perSec})
		}
		for _, r := range runs {
			if (r.Op != "login" && r.Op != "signup") || r.DB != k.db || r.Dataset != k.ds || r.Op != k.op || r.Clients != targetClients {
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
	if rep.Config.Suite == suiteOIDC {
		fmt.Fprintln(w, "ops/s: successful operations per second; p50/p99: latency of the operation's request (code: the whole")
		fmt.Fprintln(w, "round trip, authorize + token; GET p50: the authorize step alone);")
	} else {
		fmt.Fprintln(w, "ops/s: completed operations (GET form + POST) per second; p50/p99: latency of the POST alone;")
	}
	fmt.Fprintln(w, "peak RSS: server VmHWM after the level (levels run in increasing order, server restarted per db/dataset/op);")
	fmt.Fprintln(w, "srv cores: server CPU seconds per second during the window (client and server share the machine);")
	fmt.Fprintln(w, "srv CPU/op: server CPU per successful operation (PostgreSQL's own CPU not included);")
	fmt.Fprintln(w, "pg cores: CPU of all processes named postgres; gen cores: CPU of the load generator itself; other: cores")
	fmt.Fprintln(w, "used by anything else during the window (more than ~0.1: the run was disturbed by other work).")
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
			fmt.Fprintf(w, "  %-6s  %-52s  %-8s  %-22s  %-10s  %s\n", verdict, t.Target, t.DB, t.Data, t.Op, val)
		}
	}
	for _, n := range rep.Notices {
		fmt.Fprintln(w, "NOTICE:", n)
	}
	fmt.Fprintf(w, "\ntotal time %.0fs\n", rep.TotalSecs)
}
