package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// pageNames are the pages; each is parsed with the layout and the field partial.
var pageNames = []string{"landing", "signup", "login", "account", "logout", "error", "setup", "admin", "consent", "email", "admin_mail", "mfa"}

func parsePages() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		t, err := template.New(n).Funcs(template.FuncMap{"dict": dict}).ParseFS(templateFS, "templates/layout.html", "templates/field.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// dict builds the argument of a partial from key/value pairs.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// page is what every template sees.
type page struct {
	cat    *catalogue
	Lang   string
	Langs  []langLink
	Title  string
	Tenant *ciam.Tenant
	User   *ciam.User
	CSRF   string
	Notice string
	Error  string            // a form-level error
	Errors map[string]string // field name -> message
	Form   map[string]string // values to show again
	Data   any
	Grants []grantView // the account page's connected applications
	// Security is the account page's second factors and passkeys.
	Security *securityView
	// Passkey is the login page's passkey ceremony (button and autofill).
	Passkey *authn.Ceremony
	Nonce   string         // the script nonce of pages that run passkey.js
	params  map[string]any // values for translated error messages
}

type langLink struct {
	Code, Label, URL string
	Current          bool
}

// T translates a message id; args are key/value pairs for the message's placeholders.
func (p *page) T(id string, args ...any) string {
	data := map[string]any{}
	for k, v := range p.params {
		data[k] = v
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			data[k] = args[i+1]
		}
	}
	if s := p.cat.translate(p.Lang, id, data); s != "" {
		return s
	}
	return id
}

// field is what the "field" partial renders.
type field struct {
	Name, Type, Autocomplete, Label, Hint, Error, Value string
	Required                                            bool
}

// Field describes an input; password values are never echoed back.
func (p *page) Field(name, typ, autocomplete, labelID, hintID string) field {
	f := field{Name: name, Type: typ, Autocomplete: autocomplete, Label: p.T(labelID), Error: p.Errors[name], Required: name != "name" && name != "passkey_name"}
	if hintID != "" {
		f.Hint = p.T(hintID)
	}
	if typ != "password" {
		f.Value = p.Form[name]
	}
	return f
}

// message translates a classified error for a person, using its code.
func (p *page) message(e *ciam.Error) string {
	if s := p.cat.translate(p.Lang, "error."+e.Code, p.params); s != "" {
		return s
	}
	if e.Msg != "" && e.Kind != ciam.Internal {
		return e.Msg
	}
	return p.T("error.internal")
}

// setError places a classified error on its field, or on the form.
func (p *page) setError(err error) {
	e := ciam.As(err)
	if e == nil {
		e = &ciam.Error{Kind: ciam.Internal, Code: "internal"}
	}
	p.retryParams(e)
	msg := p.message(e)
	if e.Field != "" {
		p.Errors[e.Field] = msg
		return
	}
	p.Error = msg
}

func (h *Handler) newPage(r *http.Request, t *ciam.Tenant, titleID string) *page {
	lang := h.cat.pick(r)
	p := &page{cat: h.cat, Lang: lang, Tenant: t, Errors: map[string]string{}, Form: map[string]string{}, params: map[string]any{"Max": ciam.PasswordMaxLength}}
	if t != nil {
		p.params["Min"] = t.EffectivePasswordMin()
	}
	p.Title = p.T(titleID)
	for _, l := range []struct{ code, label string }{{"en", "English"}, {"de", "Deutsch"}} {
		q := url.Values{"lang": {l.code}}
		if next := r.URL.Query().Get("next"); next != "" {
			q.Set("next", next)
		}
		p.Langs = append(p.Langs, langLink{Code: l.code, Label: l.label, URL: r.URL.Path + "?" + q.Encode(), Current: l.code == lang})
	}
	return p
}

// render writes the page with status; a template failure is an internal error.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) error {
	if l := r.URL.Query().Get("lang"); l == p.Lang {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	}
	if next := p.Form["next"]; next != "" && p.Tenant != nil {
		h.allowReturnTo(w, r, p.Tenant, next) // the login and sign-up forms
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// renderError shows page name again with the classified error e on its
// field (or the form), with the error's status and, for throttling, a
// Retry-After header.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, name string, p *page, e *ciam.Error) error {
	p.setError(e)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	return h.render(w, r, web.Status(e.Kind), name, p)
}

// retryParams gives throttling messages their numbers.
func (p *page) retryParams(e *ciam.Error) {
	if e.RetryAfter > 0 {
		p.params["Minutes"] = (e.RetryAfter + 59) / 60
		p.params["Seconds"] = e.RetryAfter
	}
}
