// Command gatehouse is the one Gatehouse binary: it serves the identity
// platform (serve), applies database migrations (migrate), and manages
// tenants, users and the audit trail directly on the configured database for
// bootstrapping and scripts. It owns the configuration file format and flags,
// opens the store and hands it to server.New.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
}

// app carries what every subcommand shares.
type app struct {
	environ    []string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	configPath string
	database   string
	logLevel   string
	logFormat  string
	output     string
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: customer identity and access management in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", envValue(environ, "GATEHOUSE_CONFIG"), "YAML configuration file (env GATEHOUSE_CONFIG)")
	pf.StringVar(&a.database, "database", "", "sqlite:PATH or a postgres:// DSN (env GATEHOUSE_DATABASE)")
	pf.StringVar(&a.logLevel, "log-level", "", "debug, info, warn or error (env GATEHOUSE_LOG_LEVEL)")
	pf.StringVar(&a.logFormat, "log-format", "", "text or json (env GATEHOUSE_LOG_FORMAT)")
	root.AddCommand(a.serveCmd(), a.migrateCmd(), a.tenantCmd(), a.userCmd(), a.clientCmd(), a.keysCmd(), a.auditCmd(), a.versionCmd())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			return kv[len(key)+1:]
		}
	}
	return ""
}

// settings loads file and environment, applies the common flags, and validates.
func (a *app) settings(override func(*fileConfig)) (*settings, error) {
	c, err := load(a.configPath, a.environ)
	if err != nil {
		return nil, err
	}
	if a.database != "" {
		c.Database = a.database
	}
	if a.logLevel != "" {
		c.LogLevel = a.logLevel
	}
	if a.logFormat != "" {
		c.LogFormat = a.logFormat
	}
	if override != nil {
		override(&c)
	}
	return c.validate()
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(a.stdout, "gatehouse", version())
			return nil
		},
	}
}
