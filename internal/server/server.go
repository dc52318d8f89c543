// Package server wires Gatehouse together: it builds the services and the
// HTTP handlers from a Config and a store.Store with struct literals, mounts
// the routes, serves health, readiness and metrics, and runs the background
// jobs. It holds no business logic and never opens a database itself.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/authn/passkey"
	"github.com/gatehouse-id/gatehouse/internal/authn/password"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/consent"
	"github.com/gatehouse-id/gatehouse/internal/keys"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/oidc"
	"github.com/gatehouse-id/gatehouse/internal/outbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/throttle"
	"github.com/gatehouse-id/gatehouse/internal/token"
	"github.com/gatehouse-id/gatehouse/internal/ui"
	"github.com/gatehouse-id/gatehouse/internal/user"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Config is the runtime configuration, in plain Go values.
type Config struct {
	PublicURL      *url.URL
	Log            *slog.Logger
	TrustedProxies []netip.Prefix
	// BodyLimit caps request bodies in bytes (default 64 KiB).
	BodyLimit int64
	// HashConcurrency bounds concurrent password hashes (default GOMAXPROCS).
	HashConcurrency int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Version is reported by /healthz.
	Version string
	// KEK is the 32-byte key-encryption key that seals signing keys at rest.
	KEK []byte
	// SeparateOps keeps /metrics off the public handler: it is served only
	// by OpsHandler, on a listener of its own.
	SeparateOps bool
	// Mail is the deployment's outbound mail: the SMTP relay (Host empty:
	// mail is kept locally and its links logged) and template directory.
	Mail mail.Config
	// Redis, when set, keeps the failed-login counters shared by every
	// server process; nil keeps them in this process's memory.
	Redis redis.UniversalClient
	// OutboxPoll is how often the outbox worker looks for due messages
	// (default outbox.DefaultPoll).
	OutboxPoll time.Duration
}

// Server is a wired Gatehouse.
type Server struct {
	cfg      Config
	store    store.Store
	handler  http.Handler
	ops      http.Handler
	Tenants  *tenant.Service
	Users    *user.Service
	Authn    *authn.Service
	Sessions *session.Manager
	Hasher   *password.Hasher
	Registry *prometheus.Registry
	Clients  *client.Registry
	Keys     *keys.Manager
	Consents *consent.Service
	Tokens   *token.Service
	Provider *oidc.Handler
	Outbox   *outbox.Worker
	Mailer   *notify.Mailer
}

// New builds a server over st. It creates the built-in tenants when missing.
func New(ctx context.Context, cfg Config, st store.Store) (*Server, error) {
	if cfg.PublicURL == nil {
		return nil, errors.New("server: PublicURL is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 64 << 10
	}
	if cfg.HashConcurrency == 0 {
		cfg.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	secure := cfg.PublicURL.Scheme == "https"

	hasher := password.NewHasher(cfg.HashConcurrency)
	policy, err := password.NewPolicy()
	if err != nil {
		return nil, fmt.Errorf("load password policy: %w", err)
	}
	csrfKey, err := st.System().PutSettingIfAbsent(ctx, "csrf_key", []byte(ciam.NewSecret()))
	if err != nil {
		return nil, fmt.Errorf("load CSRF key: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_logins_total", Help: "Password logins by outcome.",
	}, []string{"outcome"})
	reg.MustRegister(logins,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_password_hash_waiting", Help: "Password hashes waiting for a slot."}, func() float64 { return float64(hasher.Waiting()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_password_hash_running", Help: "Password hashes running now."}, func() float64 { return float64(hasher.Running()) }),
	)

	accounts, sources := throttle.NewPerAccount(), throttle.NewPerIP()
	accounts.Now, sources.Now = cfg.Now, cfg.Now
	var accountLimits, sourceLimits throttle.Limiter = accounts, sources
	redisErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_throttle_redis_errors_total", Help: "Failed-login counter operations that could not reach Redis (counted in memory instead).",
	})
	reg.MustRegister(redisErrors)
	if cfg.Redis != nil {
		var lastWarn atomic.Int64
		onErr := func(err error) {
			redisErrors.Inc()
			// One warning a minute: an outage must not flood the log.
			if now := time.Now().Unix(); now-lastWarn.Load() >= 60 && lastWarn.Swap(now) != now {
				cfg.Log.Warn("throttle: Redis unreachable, counting failed logins in memory", "err", err)
			}
		}
		accountLimits = &throttle.Shared{Rules: accounts, Client: cfg.Redis, Prefix: "gatehouse:throttle:acct:", OnError: onErr}
		sourceLimits = &throttle.Shared{Rules: sources, Client: cfg.Redis, Prefix: "gatehouse:throttle:ip:", OnError: onErr}
	}
	tenants := &tenant.Service{Store: st, Now: cfg.Now, Log: cfg.Log, KEK: cfg.KEK, PublicURL: cfg.PublicURL.String()}
	sessions := &session.Manager{Store: st, Now: cfg.Now, TouchEvery: time.Minute}
	users := &user.Service{Store: st, Hasher: hasher, Policy: policy.Check, Now: cfg.Now}
	an := &authn.Service{
		Store: st, Hasher: hasher, Policy: policy.Check, Sessions: sessions,
		Accounts: accountLimits, Sources: sourceLimits,
		Now: cfg.Now, Log: cfg.Log, KEK: cfg.KEK,
		Passkeys: &passkey.Cache{PublicURL: cfg.PublicURL.String(), Now: cfg.Now},
		OnLogin:  func(outcome string) { logins.WithLabelValues(outcome).Inc() },
	}
	km := &keys.Manager{Store: st, KEK: cfg.KEK, Now: cfg.Now}
	if err := km.Check(); err != nil {
		return nil, err
	}
	renderer, err := mail.NewRenderer(cfg.Mail.TemplateDir)
	if err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	if cfg.Mail.Enabled() {
		if err := cfg.Mail.Validate("mail"); err != nil {
			return nil, err
		}
	}
	localMail := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_mail_local_total", Help: "Mail kept in the local outbox because no SMTP server is configured, by kind.",
	}, []string{"kind"})
	reg.MustRegister(localMail)
	mailer := &notify.Mailer{
		PublicURL: cfg.PublicURL, KEK: cfg.KEK, SMTP: cfg.Mail, Renderer: renderer, Tenants: tenants, Store: st,
		Log: cfg.Log, Now: cfg.Now, OnLocal: func(k mail.Kind) { localMail.WithLabelValues(string(k)).Inc() },
	}
	an.Mailer, an.CodeKey, users.Mailer = mailer, keys.Derive(cfg.KEK, "email codes"), mailer
	clients := &client.Registry{Store: st, Now: cfg.Now}
	consents := &consent.Service{Store: st, Now: cfg.Now}
	provider := &oidc.Handler{
		PublicURL: cfg.PublicURL, Secure: secure, Tenants: tenants, Users: users, Sessions: sessions,
		Clients: clients, Consents: consents, Keys: km, Log: cfg.Log, TrustedProxies: cfg.TrustedProxies,
	}
	tokens := &token.Service{Store: st, Keys: km, Now: cfg.Now, Issuer: provider.Issuer}
	provider.Tokens = tokens
	if err := tenants.EnsureBuiltin(ctx); err != nil {
		return nil, fmt.Errorf("create built-in tenants: %w", err)
	}

	pages := &ui.Handler{
		Tenants: tenants, Users: users, Authn: an, Sessions: sessions, Clients: clients, Consents: consents, Mail: mailer,
		CSRF:   &web.CSRF{Key: csrfKey, Secure: secure},
		Secure: secure, TrustedProxies: cfg.TrustedProxies, Log: cfg.Log,
	}
	if err := pages.Init(); err != nil {
		return nil, err
	}
	mux := web.NewMux(cfg.Log)
	mux.OnError = pages.RenderError
	pages.Mount(mux)
	provider.Mount(mux)

	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_outbox_deliveries_total", Help: "Outbox delivery attempts by message kind and outcome (sent, retried, dead).",
	}, []string{"kind", "outcome"})
	box := &outbox.Worker{
		Store: st, Now: cfg.Now, Log: cfg.Log, Poll: cfg.OutboxPoll,
		Deliverers: map[string]outbox.Deliverer{
			session.KindLogoutNotice: outbox.DeliverFunc(provider.DeliverLogoutNotice),
			notify.Kind:              mailer,
		},
		Observe: func(kind, outcome string) { deliveries.WithLabelValues(kind, outcome).Inc() },
	}
	reg.MustRegister(deliveries, newOutboxCollector(st))

	s := &Server{cfg: cfg, store: st, Tenants: tenants, Users: users, Authn: an, Sessions: sessions, Hasher: hasher, Registry: reg,
		Clients: clients, Keys: km, Consents: consents, Tokens: tokens, Provider: provider, Outbox: box, Mailer: mailer}
	ops := http.NewServeMux()
	ops.HandleFunc("GET /healthz", s.healthz)
	ops.HandleFunc("GET /readyz", s.readyz)
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.ops = ops
	mux.HandleHTTP("GET /healthz", ops)
	mux.HandleHTTP("GET /readyz", ops)
	if !cfg.SeparateOps {
		mux.HandleHTTP("GET /metrics", ops)
	}

	s.handler = web.Chain(mux,
		web.AssignRequestID,
		web.AccessLog(cfg.Log),
		web.NewMetrics(reg).Wrap,
		mux.Recover,
		web.SecurityHeaders{HTTPS: secure}.Wrap,
		mux.BodyLimit(cfg.BodyLimit),
	)
	return s, nil
}

// Handler is the whole public HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler serves /healthz, /readyz and /metrics, for a listener of its
// own (Config.SeparateOps).
func (s *Server) OpsHandler() http.Handler { return s.ops }

// SetupLink returns the one-time first-run link while no platform
// administrator exists, or "".
func (s *Server) SetupLink(ctx context.Context) (string, error) {
	pt, err := s.Tenants.BySlug(ctx, tenant.PlatformSlug)
	if err != nil {
		return "", err
	}
	tok, err := s.Authn.IssueSetupToken(ctx, pt)
	if err != nil || tok == "" {
		return "", err
	}
	return s.cfg.PublicURL.JoinPath("/setup").String() + "?token=" + tok, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ok","version":%q}`+"\n", s.cfg.Version)
}

// readyz answers 200 when the database answers and every migration is
// applied, 503 otherwise; it recovers by itself when the database returns.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.System().Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable","reason":"database unreachable"}`)
		return
	}
	ok, err := s.store.System().MigrationsCurrent(ctx)
	if err != nil || !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable","reason":"database migrations are not current"}`)
		return
	}
	fmt.Fprintln(w, `{"status":"ready"}`)
}

// Run runs the background jobs until ctx ends: the outbox worker, and the
// hourly sweep of ended records. It returns when both have stopped.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Outbox.Run(ctx)
	}()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
			s.sweep(ctx)
		}
	}
}

// Sweep deletes ended records of every tenant now (Run does it hourly).
func (s *Server) Sweep(ctx context.Context) { s.sweep(ctx) }

func (s *Server) sweep(ctx context.Context) {
	after := ""
	for {
		ts, err := s.Tenants.List(ctx, after, 500)
		if err != nil {
			s.cfg.Log.ErrorContext(ctx, "sweep: list tenants", "err", err)
			return
		}
		for _, t := range ts {
			if err := s.sweepTenant(ctx, t.ID); err != nil {
				s.cfg.Log.ErrorContext(ctx, "sweep expired records", "tenant", t.Slug, "err", err)
			}
		}
		if len(ts) < 500 {
			return
		}
		after = ts[len(ts)-1].Slug
	}
}

// OutboxRetention is how long sent and dead-lettered messages are kept.
const OutboxRetention = 7 * 24 * time.Hour

// sweepTenant deletes what can no longer be used: sessions, codes and
// refresh tokens that ended more than a day ago, spent nonces, and outbox
// messages finished more than OutboxRetention ago.
func (s *Server) sweepTenant(ctx context.Context, t ciam.TenantID) error {
	now := s.cfg.Now().UTC()
	cutoff := now.Add(-24 * time.Hour)
	return s.store.Tx(ctx, t, func(tx store.Tx) error {
		if _, err := tx.Outbox().DeleteDone(ctx, now.Add(-OutboxRetention)); err != nil {
			return err
		}
		if _, err := tx.Sessions().DeleteExpired(ctx, cutoff); err != nil {
			return err
		}
		if _, err := tx.AuthCodes().DeleteExpired(ctx, cutoff); err != nil {
			return err
		}
		if _, err := tx.RefreshTokens().DeleteExpired(ctx, cutoff); err != nil {
			return err
		}
		if _, err := tx.AuthFlows().DeleteExpired(ctx, cutoff); err != nil {
			return err
		}
		_, err := tx.Nonces().DeleteExpired(ctx, now)
		return err
	})
}
