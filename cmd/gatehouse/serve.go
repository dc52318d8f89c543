package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/server"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/postgres"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlite"
)

// openStore opens (and migrates) the configured database.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return sqlite.Open(ctx, sqlite.Config{Path: path})
	}
	return postgres.Open(ctx, postgres.Config{DSN: dsn})
}

func (a *app) serveCmd() *cobra.Command {
	var addr, opsAddr, publicURL, proxies, redisURL string
	var mailHost, mailTLS, mailUsername, mailFrom string
	var bodyLimit int64
	var hashConc, mailPort int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Gatehouse (applies migrations first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.settings(func(c *fileConfig) {
				f := cmd.Flags()
				if f.Changed("addr") {
					c.Addr = addr
				}
				if f.Changed("ops-addr") {
					c.OpsAddr = opsAddr
				}
				if f.Changed("redis-url") {
					c.RedisURL = redisURL
				}
				if f.Changed("public-url") {
					c.PublicURL = publicURL
				}
				if f.Changed("trusted-proxies") {
					c.TrustedProxies = strings.Split(proxies, ",")
				}
				if f.Changed("body-limit") {
					c.BodyLimit = bodyLimit
				}
				if f.Changed("hash-concurrency") {
					c.HashConcurrency = hashConc
				}
				if f.Changed("mail-host") {
					c.Mail.Host = mailHost
				}
				if f.Changed("mail-port") {
					c.Mail.Port = mailPort
				}
				if f.Changed("mail-tls") {
					c.Mail.TLS = mail.TLSMode(mailTLS)
				}
				if f.Changed("mail-username") {
					c.Mail.Username = mailUsername
				}
				if f.Changed("mail-from") {
					c.Mail.From = mailFrom
				}
			})
			if err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			return a.serve(cmd.Context(), s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "listen address host:port (env GATEHOUSE_ADDR; default localhost:8080)")
	f.StringVar(&redisURL, "redis-url", "", "share the failed-login counters of every server process through Redis, e.g. redis://127.0.0.1:6379/0 (env GATEHOUSE_REDIS_URL)")
	f.StringVar(&opsAddr, "ops-addr", "", "a separate listen address for /healthz, /readyz and /metrics; /metrics then leaves the public listener (env GATEHOUSE_OPS_ADDR)")
	f.StringVar(&publicURL, "public-url", "", "the URL people and apps reach Gatehouse at (env GATEHOUSE_PUBLIC_URL; default http://localhost:8080)")
	f.StringVar(&proxies, "trusted-proxies", "", "comma-separated proxy addresses or prefixes whose X-Forwarded-For is believed (env GATEHOUSE_TRUSTED_PROXIES)")
	f.Int64Var(&bodyLimit, "body-limit", 0, "largest request body in bytes (env GATEHOUSE_BODY_LIMIT; default 65536)")
	f.IntVar(&hashConc, "hash-concurrency", 0, "password hashes run at once (env GATEHOUSE_HASH_CONCURRENCY; default the CPU count)")
	f.StringVar(&mailHost, "mail-host", "", "SMTP server for outgoing mail; without one, mail stays in the local outbox and its links are logged (env GATEHOUSE_MAIL_HOST)")
	f.IntVar(&mailPort, "mail-port", 0, "SMTP port (env GATEHOUSE_MAIL_PORT; default 587 for starttls, 465 for tls, 25 for none)")
	f.StringVar(&mailTLS, "mail-tls", "", "none, starttls or tls (env GATEHOUSE_MAIL_TLS; default tls on port 465, else starttls)")
	f.StringVar(&mailUsername, "mail-username", "", "SMTP user name; the password comes from GATEHOUSE_MAIL_PASSWORD(_FILE) or the file (env GATEHOUSE_MAIL_USERNAME)")
	f.StringVar(&mailFrom, "mail-from", "", "sender address, e.g. \"Example <no-reply@example.com>\" (env GATEHOUSE_MAIL_FROM)")
	return cmd
}

func (a *app) serve(ctx context.Context, s *settings) error {
	log := s.logger(a.stderr)
	st, err := openStore(ctx, s.Database)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	kek, err := s.kek()
	if err != nil {
		return err
	}
	// A nil *redis.Client must not reach the interface field: a typed nil
	// would look like a configured Redis.
	var rc redis.UniversalClient
	if s.redis != nil {
		c := redis.NewClient(s.redis)
		rc = c
		defer rc.Close()
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rc.Ping(pctx).Err(); err != nil {
			log.Warn("Redis does not answer: failed-login counters stay per process until it does", "err", err)
		}
		cancel()
	}
	srv, err := server.New(ctx, server.Config{
		PublicURL: s.publicURL, Log: log, TrustedProxies: s.proxies, BodyLimit: s.BodyLimit,
		HashConcurrency: s.HashConcurrency, Version: version(), KEK: kek,
		SeparateOps: s.OpsAddr != "", Mail: s.mail, Redis: rc,
	}, st)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set --addr or GATEHOUSE_ADDR to a free address)", s.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
	// The background jobs (the outbox worker, the sweep) stop after the
	// last request has drained and before the store closes: a delivery cut
	// short records nothing, so its message goes out again after its lease.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	jobsDone := make(chan struct{})
	defer func() {
		cancel()
		<-jobsDone
	}()
	go func() {
		defer close(jobsDone)
		srv.Run(bg)
	}()

	fmt.Fprintf(a.stdout, "Gatehouse %s listening on http://%s\n", version(), ln.Addr())
	fmt.Fprintf(a.stdout, "Public URL: %s — tenant pages at %s/t/default/login\n", s.publicURL, s.publicURL)
	if link, err := srv.SetupLink(ctx); err != nil {
		log.Warn("could not issue the first-run link", "err", err)
	} else if link != "" {
		fmt.Fprintf(a.stdout, "First run: open this one-time link to create the platform administrator:\n  %s\n", link)
	}
	log.Info("serving", "addr", ln.Addr().String(), "public_url", s.publicURL.String())

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	var ops *http.Server
	if s.OpsAddr != "" {
		oln, err := net.Listen("tcp", s.OpsAddr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("listen on %s: %w (set --ops-addr or GATEHOUSE_OPS_ADDR to a free address)", s.OpsAddr, err)
		}
		ops = &http.Server{Handler: srv.OpsHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.ReadTimeout,
			WriteTimeout: s.WriteTimeout, IdleTimeout: s.IdleTimeout, MaxHeaderBytes: 32 << 10}
		go func() {
			if err := ops.Serve(oln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("operations listener: %w", err)
			}
		}()
		fmt.Fprintf(a.stdout, "Operations (/healthz, /readyz, /metrics) on http://%s\n", oln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", s.ShutdownTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer scancel()
	if ops != nil {
		defer ops.Shutdown(sctx)
	}
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.settings(nil)
			if err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			st, err := openStore(cmd.Context(), s.Database)
			if err != nil {
				return fmt.Errorf("open database: %w", err)
			}
			defer st.Close()
			ok, err := st.System().MigrationsCurrent(cmd.Context())
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("migrations are not current after applying them")
			}
			fmt.Fprintln(a.stdout, "migrations are current")
			return nil
		},
	}
}
