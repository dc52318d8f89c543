// Package ui serves the hosted pages of every tenant under /t/{tenant}: sign
// up, log in, log out and the account page (profile, password, sessions), plus
// the platform landing page, the first-run setup page and the administrators'
// home. Pages are server-rendered html/template, work without JavaScript, and
// speak English and German from one message catalogue.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"html/template"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/client"
	"github.com/gatehouse-id/gatehouse/internal/consent"
	"github.com/gatehouse-id/gatehouse/internal/notify"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/user"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Handler serves the hosted pages. Its fields are everything it uses.
type Handler struct {
	Tenants        *tenant.Service
	Users          *user.Service
	Authn          *authn.Service
	Sessions       *session.Manager
	Clients        *client.Registry
	Consents       *consent.Service
	Mail           *notify.Mailer
	CSRF           *web.CSRF
	Secure         bool // the public URL is https: cookies get Secure and the __Host- prefix
	TrustedProxies []netip.Prefix
	Log            *slog.Logger

	cat   *catalogue
	pages map[string]*template.Template
}

// Init parses the templates and the message catalogue.
func (h *Handler) Init() error {
	cat, err := newCatalogue()
	if err != nil {
		return err
	}
	pages, err := parsePages()
	if err != nil {
		return err
	}
	h.cat, h.pages = cat, pages
	return nil
}

// Mount registers the pages' routes.
func (h *Handler) Mount(m *web.Mux) {
	static, _ := fs.Sub(staticFS, "static")
	m.HandleHTTP("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	m.Handle("GET /{$}", h.landing)
	m.Handle("GET /t/{tenant}/{$}", h.tenantHome)
	m.Handle("GET /t/{tenant}", h.tenantHome)
	m.Handle("GET /t/{tenant}/theme.css", h.theme)
	m.Handle("GET /t/{tenant}/signup", h.signupForm)
	m.Handle("POST /t/{tenant}/signup", h.signup)
	m.Handle("GET /t/{tenant}/login", h.loginForm)
	m.Handle("POST /t/{tenant}/login", h.login)
	m.Handle("GET /t/{tenant}/logout", h.logoutForm)
	m.Handle("POST /t/{tenant}/logout", h.logout)
	m.Handle("GET /t/{tenant}/account", h.account)
	m.Handle("POST /t/{tenant}/account/profile", h.saveProfile)
	m.Handle("POST /t/{tenant}/account/password", h.changePassword)
	m.Handle("POST /t/{tenant}/account/sessions/{id}/revoke", h.revokeSession)
	m.Handle("POST /t/{tenant}/account/sessions/revoke-others", h.revokeOthers)
	m.Handle("GET /t/{tenant}/consent", h.consentForm)
	m.Handle("POST /t/{tenant}/consent", h.consent)
	m.Handle("POST /t/{tenant}/account/grants/{client}/revoke", h.revokeGrant)
	h.mountEmail(m)
	h.mountMFA(m)
	m.Handle("GET /setup", h.setupForm)
	m.Handle("POST /setup", h.setup)
	m.Handle("GET /admin", h.adminHome)
	m.Handle("GET /admin/mail", h.adminMail)
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// RenderError is the Mux's error hook for the hosted pages: an HTML page in
// the person's language with a stable message and the request id.
func (h *Handler) RenderError(w http.ResponseWriter, r *http.Request, status int, e *ciam.Error) {
	var t *ciam.Tenant
	if slug := r.PathValue("tenant"); slug != "" && e.Code != "tenant_not_found" {
		t, _ = h.Tenants.BySlug(r.Context(), slug)
	}
	p := h.newPage(r, t, "error.title")
	p.retryParams(e)
	msg := p.message(e)
	if status == http.StatusNotFound && e.Code == "" {
		msg = p.T("error.not_found")
	}
	p.Data = map[string]string{"Message": msg, "RequestID": web.RequestID(r.Context())}
	if err := h.render(w, r, status, "error", p); err != nil && h.Log != nil {
		h.Log.ErrorContext(r.Context(), "render error page", "err", err)
	}
}

func (h *Handler) meta(r *http.Request) audit.Meta {
	return audit.Meta{RequestID: web.RequestID(r.Context()), IP: web.ClientIP(r, h.TrustedProxies), UserAgent: r.UserAgent()}
}

func (h *Handler) tenant(r *http.Request) (*ciam.Tenant, error) {
	return h.Tenants.BySlug(r.Context(), r.PathValue("tenant"))
}

// cookieName is per tenant, since every tenant has its own sessions and
// __Host- cookies must have Path=/.
func (h *Handler) cookieName(t *ciam.Tenant) string {
	return session.CookieName(t.Slug, h.Secure)
}

func (h *Handler) setSessionCookie(w http.ResponseWriter, t *ciam.Tenant, res *authn.Result) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(t), Value: res.Token, Path: "/", HttpOnly: true, Secure: h.Secure,
		SameSite: http.SameSiteLaxMode, Expires: res.Session.ExpiresAt,
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter, t *ciam.Tenant) {
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(t), Value: "", Path: "/", HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// current returns the live session and its user, or nil when there is none.
func (h *Handler) current(r *http.Request, t *ciam.Tenant) (*ciam.Session, *ciam.User, error) {
	c, err := r.Cookie(h.cookieName(t))
	if err != nil {
		return nil, nil, nil
	}
	s, err := h.Sessions.Lookup(r.Context(), t, c.Value)
	if err != nil {
		if ciam.KindOf(err) == ciam.Unauthenticated {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	u, err := h.Users.Get(r.Context(), t, s.UserID)
	if err != nil {
		if ciam.KindOf(err) == ciam.NotFound {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	if u.Status != ciam.UserActive {
		return nil, nil, nil
	}
	return s, u, nil
}

// requireSession loads the session or sends the browser to the login page.
func (h *Handler) requireSession(w http.ResponseWriter, r *http.Request, t *ciam.Tenant) (*ciam.Session, *ciam.User, bool, error) {
	s, u, err := h.current(r, t)
	if err != nil {
		return nil, nil, false, err
	}
	if s == nil {
		if _, had := r.Cookie(h.cookieName(t)); had == nil {
			h.clearSessionCookie(w, t)
			http.Redirect(w, r, "/t/"+t.Slug+"/login?ended=1", http.StatusSeeOther)
			return nil, nil, false, nil
		}
		http.Redirect(w, r, "/t/"+t.Slug+"/login", http.StatusSeeOther)
		return nil, nil, false, nil
	}
	return s, u, true, nil
}

// safeNext keeps a post-login destination only if it stays inside the tenant.
func safeNext(t *ciam.Tenant, next string) string {
	if t.System {
		return "/admin"
	}
	prefix := "/t/" + t.Slug + "/"
	if next == "" || !strings.HasPrefix(next, prefix) || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return prefix + "account"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" || strings.Contains(u.Path, "..") {
		return prefix + "account"
	}
	return next
}

func (h *Handler) landing(w http.ResponseWriter, r *http.Request) error {
	ts, err := h.Tenants.Listed(r.Context())
	if err != nil {
		return err
	}
	p := h.newPage(r, nil, "landing.title")
	p.Data = ts
	return h.render(w, r, http.StatusOK, "landing", p)
}

func (h *Handler) tenantHome(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account", http.StatusSeeOther)
	return nil
}

// theme serves the tenant's colour as CSS, so pages need no inline style and
// the Content-Security-Policy can refuse inline styles.
func (h *Handler) theme(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err = fmt.Fprintf(w, ":root{--brand:%s}\n", t.PrimaryColor)
	return err
}

func (h *Handler) signupForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	if !t.SignupOpen {
		return authn.ErrSignupClosed
	}
	p := h.newPage(r, t, "signup.title")
	p.CSRF = h.CSRF.Token(w, r)
	p.Form["next"] = r.URL.Query().Get("next")
	p.Form["email"] = r.URL.Query().Get("login_hint")
	if h.Authn.PasskeysOn(t) {
		p.Form["passkeys"] = "on"
	}
	return h.render(w, r, http.StatusOK, "signup", p)
}

func (h *Handler) signup(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	in := authn.SignUpInput{Email: r.PostFormValue("email"), Password: r.PostFormValue("password"), Name: r.PostFormValue("name"), Locale: h.cat.pick(r)}
	next := r.PostFormValue("next")
	res, err := h.Authn.SignUp(r.Context(), t, in, h.meta(r))
	if err != nil {
		return h.formError(w, r, t, "signup", "signup.title", err, map[string]string{"email": in.Email, "name": in.Name, "next": next})
	}
	if res.Session == nil {
		// The tenant wants the address verified before the first login.
		h.setFlow(w, t, flowVerify, res.Verify, "", t.VerifyTTL())
		http.Redirect(w, r, "/t/"+t.Slug+"/verify?sent=1", http.StatusSeeOther)
		return nil
	}
	return h.loggedIn(w, r, t, res, next)
}

// formError shows a form again with the error on its field. Errors a form
// cannot show (an unknown tenant, a closed sign-up, an outage) go to the
// error page.
func (h *Handler) formError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, name, titleID string, err error, form map[string]string) error {
	e := ciam.As(err)
	if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable || e.Kind == ciam.NotFound || e.Code == "signup_closed" || e.Code == "csrf_failed" {
		return err
	}
	p := h.newPage(r, t, titleID)
	p.CSRF = h.CSRF.Token(w, r)
	p.Form = form
	return h.renderError(w, r, name, p, e)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	// An application may ask for a fresh login (prompt=login, max_age):
	// then the form shows even to a browser with a session.
	if s, _, err := h.current(r, t); err == nil && s != nil && r.URL.Query().Get("force") == "" {
		http.Redirect(w, r, safeNext(t, r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	p, err := h.loginPage(w, r, t, map[string]string{"next": r.URL.Query().Get("next"), "email": r.URL.Query().Get("login_hint")})
	if err != nil {
		return err
	}
	switch {
	case r.URL.Query().Has("loggedout"):
		p.Notice = p.T("login.logged_out")
	case r.URL.Query().Has("ended"):
		p.Notice = p.T("login.session_ended")
	case r.URL.Query().Has("verified"):
		p.Notice = p.T("login.verified")
	case r.URL.Query().Has("reset"):
		p.Notice = p.T("login.reset")
	case r.URL.Query().Has("email_changed"):
		p.Notice = p.T("login.email_changed")
	case r.URL.Query().Has("email_restored"):
		p.Notice = p.T("login.email_restored")
	}
	return h.render(w, r, http.StatusOK, "login", p)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	email, next := r.PostFormValue("email"), r.PostFormValue("next")
	res, err := h.Authn.Login(r.Context(), t, email, r.PostFormValue("password"), h.meta(r))
	if errors.Is(err, authn.ErrEmailNotVerified) && res != nil {
		if res.Verify.TokenID != "" {
			h.setFlow(w, t, flowVerify, res.Verify, "", t.VerifyTTL())
		}
		http.Redirect(w, r, "/t/"+t.Slug+"/verify?unverified=1", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return h.loginError(w, r, t, err, map[string]string{"email": email, "next": next})
	}
	return h.loggedIn(w, r, t, res, next)
}

// loginPage is the login form with a passkey ceremony for the passkey
// button and for autofill in the email field.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, form map[string]string) (*page, error) {
	p := h.newPage(r, t, "login.title")
	p.CSRF = h.CSRF.Token(w, r)
	for k, v := range form {
		p.Form[k] = v
	}
	c, err := h.Authn.BeginPasskeyLogin(t)
	if err != nil {
		return nil, err
	}
	p.Passkey, p.Nonce = c, web.CSPNonce(r.Context())
	return p, nil
}

// loginError shows the login form again with the error.
func (h *Handler) loginError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, err error, form map[string]string) error {
	e := ciam.As(err)
	if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable || e.Kind == ciam.NotFound || e.Code == "csrf_failed" {
		return err
	}
	p, perr := h.loginPage(w, r, t, form)
	if perr != nil {
		return perr
	}
	return h.renderError(w, r, "login", p, e)
}

func (h *Handler) logoutForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	p := h.newPage(r, t, "logout.title")
	p.CSRF = h.CSRF.Token(w, r)
	return h.render(w, r, http.StatusOK, "logout", p)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	s, _, err := h.current(r, t)
	if err != nil {
		return err
	}
	if s != nil {
		if err := h.Sessions.End(r.Context(), t, s, h.meta(r)); err != nil {
			return err
		}
	}
	h.clearSessionCookie(w, t)
	h.CSRF.Rotate(w)
	http.Redirect(w, r, "/t/"+t.Slug+"/login?loggedout=1", http.StatusSeeOther)
	return nil
}

// sessionView is one row of the account page's session list.
type sessionView struct {
	ID, Device, IP, LastSeen, LastSeenISO, Started, StartedISO string
	Current                                                    bool
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedGet(w, r)
	if !ok {
		return err
	}
	p, err := h.accountPage(w, r, t, s, u)
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("done") {
	case "profile":
		p.Notice = p.T("account.saved")
	case "password":
		p.Notice = p.T("account.password_changed")
	case "session":
		p.Notice = p.T("account.session_ended")
	case "others":
		p.Notice = p.T("account.sessions_ended", "Count", r.URL.Query().Get("n"))
	case "grant":
		p.Notice = p.T("account.grant_revoked")
	case "verified":
		p.Notice = p.T("account.verified")
	case "email_sent":
		p.Notice = p.T("account.email_change_sent")
	case "email_changed":
		p.Notice = p.T("account.email_changed")
	case "totp_added", "totp_removed", "codes", "passkey_added", "passkey_renamed", "passkey_removed":
		p.Notice = p.T("account.done_" + r.URL.Query().Get("done"))
	}
	return h.render(w, r, http.StatusOK, "account", p)
}

func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) (*page, error) {
	list, err := h.Sessions.List(r.Context(), t, u.ID)
	if err != nil {
		return nil, err
	}
	p := h.newPage(r, t, "account.title")
	p.User = u
	p.CSRF = h.CSRF.Token(w, r)
	p.Form["name"] = u.Name
	views := make([]sessionView, 0, len(list))
	for _, x := range list {
		views = append(views, sessionView{
			ID: string(x.ID), Device: describeDevice(x.UserAgent), IP: x.IP,
			LastSeen: x.LastSeenAt.UTC().Format("2006-01-02 15:04 MST"), LastSeenISO: x.LastSeenAt.UTC().Format(time.RFC3339),
			Started: x.CreatedAt.UTC().Format("2006-01-02 15:04 MST"), StartedISO: x.CreatedAt.UTC().Format(time.RFC3339),
			Current: x.ID == s.ID,
		})
	}
	p.Data = views
	if p.Grants, err = h.grantViews(r, t, u, p); err != nil {
		return nil, err
	}
	if p.Security, err = h.securityView(r, t, s, u); err != nil {
		return nil, err
	}
	p.Nonce = p.Security.Nonce
	return p, nil
}

// accountError shows the account page again with the error on its field.
func (h *Handler) accountError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User, err error, form map[string]string) error {
	e := ciam.As(err)
	if e == nil || e.Field == "" {
		return err
	}
	p, perr := h.accountPage(w, r, t, s, u)
	if perr != nil {
		return perr
	}
	for k, v := range form {
		p.Form[k] = v
	}
	p.setError(e)
	return h.render(w, r, web.Status(e.Kind), "account", p)
}

// authedGet is the common start of the pages that need a session: tenant,
// then the session (or a redirect to the login page).
func (h *Handler) authedGet(w http.ResponseWriter, r *http.Request) (*ciam.Tenant, *ciam.Session, *ciam.User, bool, error) {
	t, err := h.tenant(r)
	if err != nil {
		return nil, nil, nil, false, err
	}
	s, u, ok, err := h.requireSession(w, r, t)
	return t, s, u, ok, err
}

// authedPost is the common start of the account page's forms: tenant, CSRF,
// then the session.
func (h *Handler) authedPost(w http.ResponseWriter, r *http.Request) (*ciam.Tenant, *ciam.Session, *ciam.User, bool, error) {
	t, err := h.tenantPost(r)
	if err != nil {
		return nil, nil, nil, false, err
	}
	s, u, ok, err := h.requireSession(w, r, t)
	return t, s, u, ok, err
}

func (h *Handler) saveProfile(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	name := r.PostFormValue("name")
	if _, err := h.Users.SetName(r.Context(), t, u.ID, name, string(u.ID), h.meta(r)); err != nil {
		return h.accountError(w, r, t, s, u, err, map[string]string{"name": name})
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account?done=profile", http.StatusSeeOther)
	return nil
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	if !h.Authn.Recent(t, s) {
		return h.toConfirm(w, r, t, "/t/"+t.Slug+"/account")
	}
	err = h.Users.ChangePassword(r.Context(), t, u.ID, r.PostFormValue("current_password"), r.PostFormValue("new_password"), s.ID, h.meta(r))
	if err != nil {
		return h.accountError(w, r, t, s, u, err, nil)
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account?done=password", http.StatusSeeOther)
	return nil
}

func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	id := ciam.SessionID(r.PathValue("id"))
	if id == s.ID {
		return ciam.Errorf(ciam.Invalid, "current_session", "Use Log out to end this session.")
	}
	if err := h.Sessions.Revoke(r.Context(), t, u, id, string(u.ID), h.meta(r)); err != nil {
		return err
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account?done=session", http.StatusSeeOther)
	return nil
}

func (h *Handler) revokeOthers(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	n, err := h.Sessions.RevokeOthers(r.Context(), t, u, s.ID, string(u.ID), h.meta(r))
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/t/%s/account?done=others&n=%d", t.Slug, n), http.StatusSeeOther)
	return nil
}

func (h *Handler) platform(ctx context.Context) (*ciam.Tenant, error) {
	return h.Tenants.BySlug(ctx, tenant.PlatformSlug)
}

func (h *Handler) setupForm(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if !h.Authn.SetupTokenValid(r.Context(), token) {
		return authn.ErrSetupInvalid
	}
	pt, err := h.platform(r.Context())
	if err != nil {
		return err
	}
	p := h.newPage(r, pt, "setup.title")
	p.Tenant = nil
	p.params["Min"] = pt.EffectivePasswordMin()
	p.CSRF = h.CSRF.Token(w, r)
	p.Form["token"] = token
	return h.render(w, r, http.StatusOK, "setup", p)
}

func (h *Handler) setup(w http.ResponseWriter, r *http.Request) error {
	if err := h.CSRF.Verify(r); err != nil {
		return err
	}
	pt, err := h.platform(r.Context())
	if err != nil {
		return err
	}
	token, email := r.PostFormValue("token"), r.PostFormValue("email")
	res, err := h.Authn.CompleteSetup(r.Context(), pt, token, email, r.PostFormValue("password"), h.meta(r))
	if err != nil {
		if e := ciam.As(err); e != nil && e.Field != "" {
			p := h.newPage(r, pt, "setup.title")
			p.Tenant = nil
			p.params["Min"] = pt.EffectivePasswordMin()
			p.CSRF = h.CSRF.Token(w, r)
			p.Form = map[string]string{"token": token, "email": email}
			p.setError(e)
			return h.render(w, r, web.Status(e.Kind), "setup", p)
		}
		return err
	}
	return h.loggedIn(w, r, pt, res, "/admin")
}

func (h *Handler) adminHome(w http.ResponseWriter, r *http.Request) error {
	u, ts, ok, err := h.platformAdmin(w, r)
	if !ok {
		return err
	}
	p := h.newPage(r, nil, "admin.title")
	p.User = u
	p.CSRF = h.CSRF.Token(w, r)
	p.Data = ts
	return h.render(w, r, http.StatusOK, "admin", p)
}

// adminMail shows platform administrators the mail kept locally because no
// SMTP server is configured (the quick start), with its links and codes.
func (h *Handler) adminMail(w http.ResponseWriter, r *http.Request) error {
	u, ts, ok, err := h.platformAdmin(w, r)
	if !ok {
		return err
	}
	kept, err := h.Mail.KeptMail(r.Context(), ts, 100)
	if err != nil {
		return err
	}
	p := h.newPage(r, nil, "admin.mail_title")
	p.User = u
	p.CSRF = h.CSRF.Token(w, r)
	p.Data = kept
	return h.render(w, r, http.StatusOK, "admin_mail", p)
}

// describeDevice turns a user agent into a short label a person recognises.
func describeDevice(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := "Browser"
	for _, b := range []struct{ key, name string }{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go HTTP client"}} {
		if strings.Contains(ua, b.key) {
			browser = b.name
			break
		}
	}
	osName := ""
	for _, o := range []struct{ key, name string }{{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, o.key) {
			osName = o.name
			break
		}
	}
	if osName == "" {
		return browser
	}
	return browser + " on " + osName
}

// platformAdmin is the common start of the administrators' pages: the
// platform session (else the platform's login page) and the tenants.
func (h *Handler) platformAdmin(w http.ResponseWriter, r *http.Request) (*ciam.User, []*ciam.Tenant, bool, error) {
	pt, err := h.platform(r.Context())
	if err != nil {
		return nil, nil, false, err
	}
	s, u, err := h.current(r, pt)
	if err != nil {
		return nil, nil, false, err
	}
	if s == nil {
		http.Redirect(w, r, "/t/"+pt.Slug+"/login", http.StatusSeeOther)
		return nil, nil, false, nil
	}
	ts, err := h.Tenants.List(r.Context(), "", 200)
	if err != nil {
		return nil, nil, false, err
	}
	return u, ts, true, nil
}
