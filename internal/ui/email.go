package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// The pages of the mail-driven flows: address verification, password
// reset, and login by mailed link or code. A browser that starts a flow
// whose code must be entered in that browser gets a binding cookie (see
// authn.Binding); links work in any browser, but a login link opened
// elsewhere asks before it logs that browser in.

// AnswerFloor is the least time a password reset or mail login request
// takes to answer, so a known and an unknown address cannot be told apart
// by time.
const AnswerFloor = 400 * time.Millisecond

// waitFloor returns once AnswerFloor has passed since start.
func waitFloor(r *http.Request, start time.Time) {
	if wait := AnswerFloor - time.Since(start); wait > 0 {
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
		}
	}
}

func (h *Handler) mountEmail(m *web.Mux) {
	m.Handle("GET /t/{tenant}/verify", h.verifyPage)
	m.Handle("POST /t/{tenant}/verify", h.verify)
	m.Handle("POST /t/{tenant}/verify/resend", h.resendVerification)
	m.Handle("GET /t/{tenant}/forgot", h.forgotForm)
	m.Handle("POST /t/{tenant}/forgot", h.forgot)
	m.Handle("GET /t/{tenant}/reset", h.resetForm)
	m.Handle("POST /t/{tenant}/reset", h.reset)
	m.Handle("GET /t/{tenant}/login/email", h.emailLoginForm)
	m.Handle("POST /t/{tenant}/login/email", h.emailLogin)
	m.Handle("GET /t/{tenant}/login/code", h.codeForm)
	m.Handle("POST /t/{tenant}/login/code", h.code)
	m.Handle("GET /t/{tenant}/login/link", h.loginLink)
	m.Handle("POST /t/{tenant}/login/link", h.confirmLoginLink)
	m.Handle("POST /t/{tenant}/account/email", h.changeEmail)
	m.Handle("GET /t/{tenant}/email/confirm", h.emailLinkPage("email_confirm"))
	m.Handle("POST /t/{tenant}/email/confirm", h.confirmEmailChange)
	m.Handle("GET /t/{tenant}/email/undo", h.emailLinkPage("email_undo"))
	m.Handle("POST /t/{tenant}/email/undo", h.undoEmailChange)
}

// Binding cookies, one per tenant and flow.
func (h *Handler) flowCookie(t *ciam.Tenant, flow string) string {
	if h.Secure {
		return "__Host-gatehouse_" + flow + "_" + t.Slug
	}
	return "gatehouse_" + flow + "_" + t.Slug
}

func (h *Handler) setFlow(w http.ResponseWriter, t *ciam.Tenant, flow string, b authn.Binding, next string, ttl time.Duration) {
	v := b.String()
	if next != "" {
		v += "~" + url.QueryEscape(next)
	}
	http.SetCookie(w, &http.Cookie{Name: h.flowCookie(t, flow), Value: v, Path: "/", HttpOnly: true, Secure: h.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ttl / time.Second)})
}

func (h *Handler) clearFlow(w http.ResponseWriter, t *ciam.Tenant, flow string) {
	http.SetCookie(w, &http.Cookie{Name: h.flowCookie(t, flow), Value: "", Path: "/", HttpOnly: true, Secure: h.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// flow reads a binding cookie and the destination kept with it.
func (h *Handler) flow(r *http.Request, t *ciam.Tenant, flow string) (authn.Binding, string) {
	c, err := r.Cookie(h.flowCookie(t, flow))
	if err != nil {
		return authn.Binding{}, ""
	}
	v, next, _ := strings.Cut(c.Value, "~")
	next, _ = url.QueryUnescape(next)
	return authn.ParseBinding(v), next
}

const (
	flowVerify = "v"
	flowLogin  = "e"
)

// emailPage renders the "email" template at one of its steps.
func (h *Handler) emailPage(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, step, titleID string) *page {
	p := h.newPage(r, t, titleID)
	p.CSRF = h.CSRF.Token(w, r)
	p.Form["step"] = step
	return p
}

// verifyPage asks to confirm the address of a verification link, or for
// the code from the mail.
func (h *Handler) verifyPage(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	p := h.emailPage(w, r, t, "verify", "verify.title")
	p.Form["token"] = r.URL.Query().Get("token")
	switch {
	case r.URL.Query().Has("sent"):
		p.Notice = p.T("verify.sent")
	case r.URL.Query().Has("unverified"):
		p.Notice = p.T("verify.unverified")
	}
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	s, u, err := h.current(r, t)
	if err != nil {
		return err
	}
	if token := r.PostFormValue("token"); token != "" {
		_, err = h.Authn.VerifyLink(r.Context(), t, token, h.meta(r))
	} else {
		b, _ := h.flow(r, t, flowVerify)
		_, err = h.Authn.VerifyCode(r.Context(), t, u, b, r.PostFormValue("code"), h.meta(r))
	}
	if err != nil {
		e := ciam.As(err)
		if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable {
			return err
		}
		p := h.emailPage(w, r, t, "verify", "verify.title")
		p.Form["token"] = r.PostFormValue("token")
		p.setError(e)
		return h.render(w, r, web.Status(e.Kind), "email", p)
	}
	h.clearFlow(w, t, flowVerify)
	if s != nil {
		http.Redirect(w, r, "/t/"+t.Slug+"/account?done=verified", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/login?verified=1", http.StatusSeeOther)
	return nil
}

// resendVerification sends a new link and code to the session's user, or
// to the user the browser's binding names.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	_, u, err := h.current(r, t)
	if err != nil {
		return err
	}
	if u == nil {
		b, _ := h.flow(r, t, flowVerify)
		if u, err = h.Authn.BoundUser(r.Context(), t, b, ciam.PurposeVerifyEmail); err != nil {
			return err
		}
	}
	b, err := h.Authn.ResendVerification(r.Context(), t, u, h.meta(r))
	if err != nil {
		e := ciam.As(err)
		if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable {
			return err
		}
		p := h.emailPage(w, r, t, "verify", "verify.title")
		return h.renderError(w, r, "email", p, e)
	}
	h.setFlow(w, t, flowVerify, b, "", t.VerifyTTL())
	http.Redirect(w, r, "/t/"+t.Slug+"/verify?sent=1", http.StatusSeeOther)
	return nil
}

func (h *Handler) forgotForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	p := h.emailPage(w, r, t, "forgot", "forgot.title")
	p.Form["email"] = r.URL.Query().Get("email")
	return h.render(w, r, http.StatusOK, "email", p)
}

// forgot answers a reset request the same way, after the same time, for
// every well-formed address.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	email := r.PostFormValue("email")
	err = h.Authn.RequestReset(r.Context(), t, email, h.meta(r))
	if e := ciam.As(err); e != nil && e.Field != "" {
		return h.formError(w, r, t, "email", "forgot.title", err, map[string]string{"step": "forgot", "email": email})
	}
	if err != nil {
		return err
	}
	waitFloor(r, start)
	p := h.emailPage(w, r, t, "sent", "forgot.title")
	p.Notice = p.T("forgot.sent")
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) resetForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	token := r.URL.Query().Get("token")
	if err := h.Authn.CheckReset(r.Context(), t, token); err != nil {
		return h.linkError(w, r, t, err)
	}
	p := h.emailPage(w, r, t, "reset", "reset.title")
	p.Form["token"] = token
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	token := r.PostFormValue("token")
	if _, err := h.Authn.ResetPassword(r.Context(), t, token, r.PostFormValue("new_password"), h.meta(r)); err != nil {
		if e := ciam.As(err); e != nil && e.Field != "" {
			return h.formError(w, r, t, "email", "reset.title", err, map[string]string{"step": "reset", "token": token})
		}
		return h.linkError(w, r, t, err)
	}
	// Every session of the user ended, this browser's too.
	h.clearSessionCookie(w, t)
	h.CSRF.Rotate(w)
	http.Redirect(w, r, "/t/"+t.Slug+"/login?reset=1", http.StatusSeeOther)
	return nil
}

// linkError shows a link that does not work on a page that offers the way
// forward (a new link), rather than the bare error page.
func (h *Handler) linkError(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, err error) error {
	e := ciam.As(err)
	if e == nil || e.Kind == ciam.Internal || e.Kind == ciam.Unavailable {
		return err
	}
	p := h.emailPage(w, r, t, "link_invalid", "link.title")
	p.setError(e.OnField(""))
	return h.render(w, r, web.Status(e.Kind), "email", p)
}

func (h *Handler) emailLoginForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	p := h.emailPage(w, r, t, "email_login", "email_login.title")
	p.Form["email"] = r.URL.Query().Get("login_hint")
	p.Form["next"] = r.URL.Query().Get("next")
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) emailLogin(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	email, method, next := r.PostFormValue("email"), r.PostFormValue("method"), r.PostFormValue("next")
	b, err := h.Authn.StartEmailLogin(r.Context(), t, email, method, h.meta(r))
	if err != nil {
		return h.formError(w, r, t, "email", "email_login.title", err, map[string]string{"step": "email_login", "email": email, "next": next})
	}
	h.setFlow(w, t, flowLogin, b, next, t.LoginTTL())
	waitFloor(r, start)
	if method == authn.EmailCode {
		http.Redirect(w, r, "/t/"+t.Slug+"/login/code", http.StatusSeeOther)
		return nil
	}
	p := h.emailPage(w, r, t, "sent", "email_login.title")
	p.Notice = p.T("email_login.link_sent")
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) codeForm(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	p := h.emailPage(w, r, t, "code", "email_login.title")
	p.Notice = p.T("email_login.code_sent")
	return h.render(w, r, http.StatusOK, "email", p)
}

func (h *Handler) code(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	b, next := h.flow(r, t, flowLogin)
	res, err := h.Authn.CompleteEmailCode(r.Context(), t, b, r.PostFormValue("code"), h.meta(r))
	if err != nil {
		return h.formError(w, r, t, "email", "email_login.title", err, map[string]string{"step": "code"})
	}
	return h.finishEmailLogin(w, r, t, res, next)
}

// loginLink completes a login link in the browser that asked for it, and
// elsewhere asks first.
func (h *Handler) loginLink(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenant(r)
	if err != nil {
		return err
	}
	token := r.URL.Query().Get("token")
	b, next := h.flow(r, t, flowLogin)
	res, other, err := h.Authn.CompleteEmailLink(r.Context(), t, token, b, h.meta(r))
	if errors.Is(err, authn.ErrOtherBrowser) && other != nil {
		p := h.emailPage(w, r, t, "confirm_link", "email_login.title")
		p.Form["token"] = token
		p.Form["email"] = other.Email
		return h.render(w, r, http.StatusOK, "email", p)
	}
	if err != nil {
		return h.linkError(w, r, t, err)
	}
	return h.finishEmailLogin(w, r, t, res, next)
}

func (h *Handler) confirmLoginLink(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	res, err := h.Authn.ConfirmEmailLink(r.Context(), t, r.PostFormValue("token"), h.meta(r))
	if err != nil {
		return h.linkError(w, r, t, err)
	}
	return h.finishEmailLogin(w, r, t, res, "")
}

func (h *Handler) finishEmailLogin(w http.ResponseWriter, r *http.Request, t *ciam.Tenant, res *authn.Result, next string) error {
	h.clearFlow(w, t, flowLogin)
	return h.loggedIn(w, r, t, res, next)
}

func (h *Handler) changeEmail(w http.ResponseWriter, r *http.Request) error {
	t, s, u, ok, err := h.authedPost(w, r)
	if !ok {
		return err
	}
	if !h.Authn.Recent(t, s) {
		return h.toConfirm(w, r, t, "/t/"+t.Slug+"/account")
	}
	newEmail := r.PostFormValue("new_email")
	err = h.Authn.RequestEmailChange(r.Context(), t, u, r.PostFormValue("email_password"), newEmail, h.meta(r))
	if e := ciam.As(err); e != nil && e.Field == "current_password" {
		err = e.OnField("email_password") // the password form has its own current_password field
	}
	if e := ciam.As(err); e != nil && e.Kind == ciam.TooManyRequests {
		err = e.OnField("new_email")
	}
	if err != nil {
		return h.accountError(w, r, t, s, u, err, map[string]string{"new_email": newEmail})
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/account?done=email_sent", http.StatusSeeOther)
	return nil
}

// emailLinkPage asks to confirm an email change link, or to undo one;
// opening the link changes nothing.
func (h *Handler) emailLinkPage(step string) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		t, err := h.tenant(r)
		if err != nil {
			return err
		}
		p := h.emailPage(w, r, t, step, step+".title")
		p.Form["token"] = r.URL.Query().Get("token")
		return h.render(w, r, http.StatusOK, "email", p)
	}
}

func (h *Handler) confirmEmailChange(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	if _, err := h.Authn.ConfirmEmailChange(r.Context(), t, r.PostFormValue("token"), h.meta(r)); err != nil {
		return h.linkError(w, r, t, err)
	}
	if s, _, err := h.current(r, t); err == nil && s != nil {
		http.Redirect(w, r, "/t/"+t.Slug+"/account?done=email_changed", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/t/"+t.Slug+"/login?email_changed=1", http.StatusSeeOther)
	return nil
}

func (h *Handler) undoEmailChange(w http.ResponseWriter, r *http.Request) error {
	t, err := h.tenantPost(r)
	if err != nil {
		return err
	}
	if _, err := h.Authn.UndoEmailChange(r.Context(), t, r.PostFormValue("token"), h.meta(r)); err != nil {
		return h.linkError(w, r, t, err)
	}
	h.clearSessionCookie(w, t)
	h.CSRF.Rotate(w)
	http.Redirect(w, r, "/t/"+t.Slug+"/login?email_restored=1", http.StatusSeeOther)
	return nil
}

// tenantPost is the common start of a form post: the tenant, then CSRF.
func (h *Handler) tenantPost(r *http.Request) (*ciam.Tenant, error) {
	t, err := h.tenant(r)
	if err != nil {
		return nil, err
	}
	if err := h.CSRF.Verify(r); err != nil {
		return nil, err
	}
	return t, nil
}
