package ui

// The pages of second factors and passkeys: the second step of a login
// (or adding a first factor where the tenant requires one), confirming who
// you are for a sensitive change or a client's step-up, the account page's
// security settings, and passkey login and sign-up. Passkey ceremonies run
// in static/passkey.js: the page carries the options and a sealed state,
// the script asks the browser and posts its answer with the form, so no
// page fetches anything and the pages keep working as plain forms.

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

const flowMFA = "m"

func (h *Handler) mountMFA(m *web.Mux) {
	m.Handle("GET /t/{tenant}/mfa", h.mfaForm)
	m.Handle("POST /t/{tenant}/mfa", h.mfa)
	m.Handle("POST /t/{tenant}/mfa/enrol", h.mfaEnrol)
	m.Handle("GET /t/{tenant}/confirm", h.confirmForm)
	m.Handle("POST /t/{tenant}/confirm", h.confirm)
	m.Handle("POST /t/{tenant}/passkey/login", h.passkeyLogin)
	m.Handle("POST /t/{tenant}/signup/passkey", h.passkeySignup)
	m.Handle("GET /t/{tenant}/account/totp", h.totpForm)
	m.Handle("POST /t/{tenant}/account/totp", h.totpConfirm)
	m.Handle("POST /t/{tenant}/account/totp/remove", h.securityChange("totp_removed", h.totpRemove))
	m.Handle("POST /t/{tenant}/account/recovery-codes", h.recoveryCodes)
	m.Handle("POST /t/{tenant}/account/passkeys", h.securityChange("passkey_added", h.passkeyAdd))
	m.Handle("POST /t/{tenant}/account/passkeys/{id}/rename", h.securityChange("passkey_renamed", h.passkeyRename))
	m.Handle("POST /t/{tenant}/account/passkeys/{id}/remove", h.securityChange("passkey_removed", h.passkeyRemove))
}

// mfaView is what the "mfa" page shows at its Step.
type mfaView struct {
	Step      string // challenge, enrol, confirm, totp_setup, codes, passkey_signup
	Nonce     string // the page's script nonce
	Next      string
	TOTP      bool
	Recovery  int
	Password  bool
	Passkey   *authn.Ceremony // an assertion (challenge, confirm) or a registration (enrol, passkey_signup)
	Setup     *totpView
	Codes     []string
	StepUp    bool // a client asks for a second factor
	NoFactor  bool // step-up is asked of a user without a second factor
	MFAOff    bool
	ActionURL string
}

type totpView struct {
	QR     template.URL
	Text   string
	URI    template.URL // otpauth://, for a device that has the app
	Sealed string
}

func newTOTPView(e *authn.TOTPEnrolment) *totpView {
	return &totpView{QR: template.URL(e.QR), Text: e.Text, URI: template.URL(e.URI), Sealed: e.Sealed}
}

func (h *Handler) mfaPage(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, titleID string, v *mfaView) *page {
	p := h.newPage(r, t, titleID)
	p.CSRF = h.CSRF.Token(w, r)
	v.Nonce = web.CSPNonce(r.Context())
	p.Data = v
	if v.Next != "" {
		// The form's redirects may end at the client of an authorization
		// request: its form-action must allow them.
		h.allowReturnTo(w, r, t, v.Next)
	}
	return p
}

// loggedIn ends a login that passed its first factor: a session cookie, or,
// when a second factor is missing, the pending login's cookie and its page.
func (h *Handler) loggedIn(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, res *authn.Result, next string) error {
	if res.Session == nil && res.Pending.TokenID != "" {
		h.setFlow(w, t, flowMFA, res.Pending, next, authn.PendingTTL)
		http.Redirect(w, r, "/t/"+t.Slug+"/mfa", http.StatusSeeOther)
		return nil
	}
	if err := h.startSession(w, r, t, res); err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(t, next), http.StatusSeeOther)
	return nil
}

// startSession gives the browser the session of a completed login. The
// session is rotated: one this browser had before ends, so no identifier
// outlives the login that replaced it.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, res *authn.Result) error {
	if old, _, err := h.current(r, t); err == nil && old != nil {
		if err := h.Sessions.End(r.Context(), t, old, h.meta(r)); err != nil {
			return err
		}
	}
	h.clearFlow(w, t, flowMFA)
	h.setSessionCookie(w, t, res)
	h.CSRF.Rotate(w)
	return nil
}

// pendingView builds the second step of a login.
func (h *Handler) pendingView(r *http.Request, t *ciam.Tenant, pl *authn.PendingLogin, next string) (*mfaView, error) {
	v := &mfaView{Step: "challenge", Next: next, TOTP: pl.Factors.TOTP, Recovery: pl.Factors.Recovery}
	var err error
	if pl.Enrol {
		v.Step = "enrol"
		e, err := h.Authn.BeginTOTP(t, pl.User)
		if err != nil {
			return nil, err
		}
		v.Setup = newTOTPView(e)
		v.Passkey, err = h.Authn.BeginPasskeyCreate(t, pl.User, pl.Factors)
		return v, err
	}
	v.Passkey, err = h.Authn.BeginPasskeyVerify(t, pl.User, pl.Factors)
	return v, err
}

func (h *Handler) mfaForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	b, next := h.flow(r, t, flowMFA)
	pl, err := h.Authn.Pending(r.Context(), t, b)
	if err != nil {
		h.clearFlow(w, t, flowMFA)
		return err
	}
	v, err := h.pendingView(r, t, pl, next)
	if err != nil {
		return err
	}
	return h.render(w, r, http.StatusOK, "mfa", h.mfaPage(w, r, t, "mfa.title", v))
}

// proof reads a factor from a posted form.
func proof(r *http.Request) authn.Proof {
	p := authn.Proof{
		Method: r.PostFormValue("method"), Password: r.PostFormValue("password"), Code: r.PostFormValue("code"),
		State: r.PostFormValue("state"), Credential: []byte(r.PostFormValue("credential")),
	}
	if p.Method == authn.MethodRecovery {
		p.Code = r.PostFormValue("recovery")
	}
	return p
}

// onProofField puts a wrong code on the field the person typed it in.
func onProofField(r *http.Request, e *ciam.Error) *ciam.Error {
	if e.Field == "code" && r.PostFormValue("method") == authn.MethodRecovery {
		return e.OnField("recovery")
	}
	return e
}

func (h *Handler) mfa(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	b, next := h.flow(r, t, flowMFA)
	res, err := h.Authn.CompleteSecondFactor(r.Context(), t, b, proof(r), h.meta(r))
	if err != nil {
		return h.pendingError(w, r, t, b, next, err)
	}
	return h.loggedIn(w, r, t, res, next)
}

// pendingError shows the second step again with the error, or, when the
// pending login is over, the error page.
func (h *Handler) pendingError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, b authn.Binding, next string, err error) error {
	e := ciam.As(err)
	if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable || e.Code == authn.ErrPendingExpired.Code || e.Code == "too_many_attempts" {
		if e != nil && e.Kind != ciam.Internal {
			h.clearFlow(w, t, flowMFA)
		}
		return err
	}
	pl, perr := h.Authn.Pending(r.Context(), t, b)
	if perr != nil {
		h.clearFlow(w, t, flowMFA)
		return perr
	}
	v, verr := h.pendingView(r, t, pl, next)
	if verr != nil {
		return verr
	}
	if pl.Enrol && r.PostFormValue("sealed") != "" {
		if e2, err2 := h.Authn.ReopenTOTP(t, pl.User, r.PostFormValue("sealed")); err2 == nil {
			v.Setup = newTOTPView(e2)
		}
	}
	p := h.mfaPage(w, r, t, "mfa.title", v)
	return h.renderError(w, r, "mfa", p, onProofField(r, e))
}

func (h *Handler) mfaEnrol(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	b, next := h.flow(r, t, flowMFA)
	var res *authn.Result
	var codes []string
	if r.PostFormValue("method") == authn.MethodPasskey {
		res, codes, err = h.Authn.EnrolPendingPasskey(r.Context(), t, b, r.PostFormValue("state"), []byte(r.PostFormValue("credential")), r.PostFormValue("passkey_name"), h.meta(r))
	} else {
		res, codes, err = h.Authn.EnrolPendingTOTP(r.Context(), t, b, r.PostFormValue("sealed"), r.PostFormValue("code"), h.meta(r))
	}
	if err != nil {
		return h.pendingError(w, r, t, b, next, err)
	}
	if err := h.startSession(w, r, t, res); err != nil {
		return err
	}
	return h.showCodes(w, r, t, codes, safeNext(t, next))
}

// showCodes shows new recovery codes once, with the way on.
func (h *Handler) showCodes(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, codes []string, next string) error {
	if len(codes) == 0 {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	p := h.mfaPage(w, r, t, "mfa.codes_title", &mfaView{Step: "codes", Codes: codes, Next: next})
	return h.render(w, r, http.StatusOK, "mfa", p)
}

// confirmNext is where the confirmation page returns to; it must stay in
// the tenant.
func confirmURL(t *ciam.Tenant, next string, stepUp bool) string {
	q := url.Values{"next": {next}}
	if stepUp {
		q.Set("acr", "2")
	}
	return "/t/" + t.Slug + "/confirm?" + q.Encode()
}

// toConfirm sends the browser to confirm who they are before a sensitive
// change; the change is made again afterwards.
func (h *Handler) toConfirm(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, next string) error {
	http.Redirect(w, r, confirmURL(t, next, false), http.StatusSeeOther)
	return nil
}

func (h *Handler) confirmView(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User, next string, stepUp bool) (*mfaView, error) {
	f, err := h.Authn.Factors(r.Context(), t, u.ID)
	if err != nil {
		return nil, err
	}
	// At step-up a password counts only after a passkey login.
	v := &mfaView{Step: "confirm", Next: next, TOTP: f.TOTP, Recovery: f.Recovery, Password: f.Password && (!stepUp || authn.PasswordIsSecond(s)), StepUp: stepUp}
	v.NoFactor = stepUp && !f.Any()
	v.Passkey, err = h.Authn.BeginPasskeyVerify(t, u, f)
	return v, err
}

func (h *Handler) confirmForm(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedGet(w, r)
	if !ok {
		return err
	}
	stepUp := r.URL.Query().Get("acr") == "2" && s.ACR != ciam.ACRMultiFactor
	v, err := h.confirmView(r, t, s, u, safeNext(t, r.URL.Query().Get("next")), stepUp)
	if err != nil {
		return err
	}
	p := h.mfaPage(w, r, t, "confirm.title", v)
	p.User = u
	return h.render(w, r, http.StatusOK, "mfa", p)
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	c, _ := r.Cookie(h.cookieName(t))
	next := safeNext(t, r.PostFormValue("next"))
	stepUp := r.PostFormValue("acr") == "2"
	pf := proof(r)
	if stepUp && pf.Method == authn.MethodPassword && !authn.PasswordIsSecond(s) {
		pf.Method = "" // a password is no second factor after a password or a mailed code
	}
	res, err := h.Authn.Confirm(r.Context(), t, s, c.Value, u, pf, h.meta(r))
	if err != nil {
		e := ciam.As(err)
		if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable || e.Code == "session_expired" {
			return err
		}
		v, verr := h.confirmView(r, t, s, u, next, stepUp)
		if verr != nil {
			return verr
		}
		p := h.mfaPage(w, r, t, "confirm.title", v)
		p.User = u
		return h.renderError(w, r, "mfa", p, onProofField(r, e))
	}
	h.setSessionCookie(w, t, res)
	h.CSRF.Rotate(w)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (h *Handler) passkeyLogin(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	next := r.PostFormValue("next")
	res, err := h.Authn.PasskeyLogin(r.Context(), t, r.PostFormValue("state"), []byte(r.PostFormValue("credential")), h.meta(r))
	if err != nil {
		return h.loginError(w, r, t, err, map[string]string{"next": next})
	}
	return h.loggedIn(w, r, t, res, next)
}

func (h *Handler) passkeySignup(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	next := r.PostFormValue("next")
	form := map[string]string{"email": r.PostFormValue("email"), "name": r.PostFormValue("name"), "next": next}
	if r.PostFormValue("credential") == "" {
		// The first step: the account's address and name; the browser makes
		// the passkey on the next page.
		c, err := h.Authn.BeginPasskeySignup(t, form["email"], form["name"], h.cat.pick(r))
		if err != nil {
			return h.formError(w, r, t, "signup", "signup.title", err, form)
		}
		p := h.mfaPage(w, r, t, "signup.passkey_title", &mfaView{Step: "passkey_signup", Passkey: c, Next: next})
		p.Form = form
		return h.render(w, r, http.StatusOK, "mfa", p)
	}
	res, err := h.Authn.PasskeySignup(r.Context(), t, r.PostFormValue("state"), []byte(r.PostFormValue("credential")), r.PostFormValue("passkey_name"), h.meta(r))
	if err != nil {
		return h.formError(w, r, t, "signup", "signup.title", err, form)
	}
	if res.Session == nil && res.Pending.TokenID == "" {
		h.setFlow(w, t, flowVerify, res.Verify, "", t.VerifyTTL())
		http.Redirect(w, r, "/t/"+t.Slug+"/verify?sent=1", http.StatusSeeOther)
		return nil
	}
	return h.loggedIn(w, r, t, res, next)
}

// securityView is the account page's security section.
type securityView struct {
	Password bool // the user has a password (a passkey-only user sets one without the current)
	MFAOn    bool
	TOTP     bool
	Recovery int
	Passkeys []passkeyView
	Create   *authn.Ceremony
	Recent   bool
	Nonce    string
}

type passkeyView struct {
	ID, Name, Created, LastUsed string
	Synced                      bool
}

func (h *Handler) securityView(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) (*securityView, error) {
	f, err := h.Authn.Factors(r.Context(), t, u.ID)
	if err != nil {
		return nil, err
	}
	v := &securityView{Password: f.Password, MFAOn: t.MFAPolicy != ciam.MFAOff, TOTP: f.TOTP, Recovery: f.Recovery, Recent: h.Authn.Recent(t, s), Nonce: web.CSPNonce(r.Context())}
	for _, pk := range f.Passkeys {
		pv := passkeyView{ID: pk.ID, Name: pk.Name, Created: pk.CreatedAt.UTC().Format("2006-01-02"), Synced: pk.BackupEligible}
		if !pk.LastUsedAt.IsZero() {
			pv.LastUsed = pk.LastUsedAt.UTC().Format("2006-01-02 15:04 MST")
		}
		v.Passkeys = append(v.Passkeys, pv)
	}
	if v.Create, err = h.Authn.BeginPasskeyCreate(t, u, f); err != nil {
		return nil, err
	}
	return v, nil
}

// securityError answers a failed security change: a confirmation first
// when the login is not recent, else the account page with the error.
func (h *Handler) securityError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User, err error) error {
	if errors.Is(err, authn.ErrReauthRequired) {
		return h.toConfirm(w, r, t, "/t/"+t.Slug+"/account")
	}
	e := ciam.As(err)
	if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable {
		return err
	}
	p, perr := h.accountPage(w, r, t, s, u)
	if perr != nil {
		return perr
	}
	p.setError(e)
	if e.Field != "" && p.Error == "" {
		p.Error = p.Errors[e.Field]
	}
	return h.render(w, r, web.Status(e.Kind), "account", p)
}

func (h *Handler) totpForm(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedGet(w, r)
	if !ok {
		return err
	}
	if !h.Authn.Recent(t, s) {
		return h.toConfirm(w, r, t, "/t/"+t.Slug+"/account/totp")
	}
	e, err := h.Authn.BeginTOTP(t, u)
	if err != nil {
		return err
	}
	p := h.mfaPage(w, r, t, "mfa.totp_title", &mfaView{Step: "totp_setup", Setup: newTOTPView(e), MFAOff: t.MFAPolicy == ciam.MFAOff})
	return h.render(w, r, http.StatusOK, "mfa", p)
}

func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	sealed := r.PostFormValue("sealed")
	codes, err := h.Authn.ConfirmTOTP(r.Context(), t, s, u, sealed, r.PostFormValue("code"), h.meta(r))
	if err != nil {
		e := ciam.As(err)
		if errors.Is(err, authn.ErrReauthRequired) || e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable || e.Code == authn.ErrEnrolmentExpired.Code {
			return h.securityError(w, r, t, s, u, err)
		}
		en, rerr := h.Authn.ReopenTOTP(t, u, sealed)
		if rerr != nil {
			return h.securityError(w, r, t, s, u, rerr)
		}
		p := h.mfaPage(w, r, t, "mfa.totp_title", &mfaView{Step: "totp_setup", Setup: newTOTPView(en)})
		p.setError(e)
		return h.render(w, r, web.Status(e.Kind), "mfa", p)
	}
	return h.showCodes(w, r, t, codes, "/t/"+t.Slug+"/account?done=totp_added")
}

// securityChange is a POST of the account page's security settings: the
// change runs for the signed-in user, then the page says done, or shows
// the error (or asks to confirm the login first).
func (h *Handler) securityChange(done string, change func(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) error) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		t, s, u, ok, err := h.authedPost(w, r)
		if !ok {
			return err
		}
		if err := change(r, t, s, u); err != nil {
			return h.securityError(w, r, t, s, u, err)
		}
		http.Redirect(w, r, "/t/"+t.Slug+"/account?done="+done, http.StatusSeeOther)
		return nil
	}
}

func (h *Handler) totpRemove(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) error {
	return h.Authn.RemoveTOTP(r.Context(), t, s, u, h.meta(r))
}

func (h *Handler) passkeyAdd(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) error {
	_, err := h.Authn.AddPasskey(r.Context(), t, s, u, r.PostFormValue("state"), []byte(r.PostFormValue("credential")), r.PostFormValue("passkey_name"), h.meta(r))
	return err
}

func (h *Handler) passkeyRename(r *http.Request, t *ciam.Tenant, _ *ciam.Session, u *ciam.User) error {
	return h.Authn.RenamePasskey(r.Context(), t, u, r.PathValue("id"), r.PostFormValue("name"), h.meta(r))
}

func (h *Handler) passkeyRemove(r *http.Request, t *ciam.Tenant, s *ciam.Session, u *ciam.User) error {
	return h.Authn.RemovePasskey(r.Context(), t, s, u, r.PathValue("id"), h.meta(r))
}

func (h *Handler) recoveryCodes(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	codes, err := h.Authn.RegenerateRecoveryCodes(r.Context(), t, s, u, h.meta(r))
	if err != nil {
		return h.securityError(w, r, t, s, u, err)
	}
	return h.showCodes(w, r, t, codes, "/t/"+t.Slug+"/account?done=codes")
}
