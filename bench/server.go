package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildGatehouse runs `go build -o bin ./cmd/gatehouse` in the module root.
func buildGatehouse(ctx context.Context, bin string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/gatehouse: %w", err)
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench inside the gatehouse module (go run ./bench from the repository root)")
	}
	return filepath.Dir(mod), nil
}

// serverProc is a running `gatehouse serve` process.
type serverProc struct {
	cmd     *exec.Cmd
	pid     int
	base    string // http://127.0.0.1:port
	logPath string
	exited  chan error
	startMB float64 // VmRSS right after "listening on"
}

// serverEnv is the environment of a gatehouse process: ours without any
// GATEHOUSE_* variable (unknown ones are errors), plus the given settings.
func serverEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts `gatehouse serve` on a free loopback port and waits
// until it prints "listening on".
func startServer(ctx context.Context, bin, work, dsn string, hashConc int, extraEnv []string, name string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(work, "server-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	env := []string{
		"GATEHOUSE_ADDR=" + addr,
		"GATEHOUSE_PUBLIC_URL=http://" + addr,
		"GATEHOUSE_DATABASE=" + dsn,
		"GATEHOUSE_LOG_LEVEL=warn",
	}
	if hashConc > 0 {
		env = append(env, "GATEHOUSE_HASH_CONCURRENCY="+strconv.Itoa(hashConc))
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(serverEnv(env...), extraEnv...) // later values win
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start gatehouse serve: %w", err)
	}
	s := &serverProc{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, logPath: logPath, exited: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, "stdout:", line)
			if !seen && strings.Contains(line, "listening on") {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.exited <- cmd.Wait()
		logf.Close()
	}()
	select {
	case <-ready:
	case err := <-s.exited:
		return nil, fmt.Errorf("gatehouse serve exited before listening (%v); log:\n%s", err, tail(logPath, 20))
	case <-time.After(2 * time.Minute):
		s.kill()
		return nil, fmt.Errorf("gatehouse serve did not print \"listening on\" within 2 minutes; log:\n%s", tail(logPath, 20))
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
	s.startMB = s.status("VmRSS")
	return s, nil
}

// stop sends SIGTERM and waits for the process to end.
func (s *serverProc) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		return err
	case <-time.After(40 * time.Second):
		s.kill()
		return errors.New("did not stop within 40s of SIGTERM; killed")
	}
}

func (s *serverProc) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// status returns a "kB" line of /proc/<pid>/status (VmHWM, VmRSS) in MB
// (10^6 bytes), or -1.
func (s *serverProc) status(key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return -1
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return -1
		}
		return kb * 1024 / 1e6
	}
	return -1
}

// cpuSeconds is the server's user+system CPU time so far.
func (s *serverProc) cpuSeconds() float64 {
	return procCPUSeconds(s.pid)
}

func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may contain spaces; fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14 utime
	st, _ := strconv.ParseFloat(f[12], 64) // field 15 stime
	return (ut + st) / clockTicks
}

// machineCPUSeconds is the busy CPU time of the whole machine so far (all
// of /proc/stat's first line but idle and iowait), to tell how much of the
// machine other processes used during a window.
func machineCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 { // idle, iowait; steal, guest are not ours to count
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks
}

// commCPUSeconds sums the CPU time of every process whose command name is
// comm (e.g. "postgres": the database server's backends), keyed by pid so
// that a window's difference can skip processes that ended in between.
func commCPUSeconds(comm string) map[int]float64 {
	out := map[int]float64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if v := procCPUSeconds(pid); v >= 0 {
			out[pid] = v
		}
	}
	return out
}

// cpuDelta is the CPU the processes of after used since before: new
// processes count in full, ended ones are left out.
func cpuDelta(before, after map[int]float64) float64 {
	var d float64
	for pid, v := range after {
		d += v - before[pid]
	}
	return d
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go supports.
const clockTicks = 100.0

// selfCPUSeconds is this process's user+system CPU time so far.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// perfRecord runs `perf record` on pid for d, writing to out. It returns a
// function that waits for perf to finish.
func perfRecord(pid int, d time.Duration, out string) func() {
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out, "--", "sleep", secs)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: perf record:", err)
		return func() {}
	}
	return func() { _ = cmd.Wait() }
}
