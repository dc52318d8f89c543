package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
)

//go:embed templates/*.html templates/*.txt
var embedded embed.FS

// Kind names a message template.
type Kind string

// The message kinds.
const (
	VerifyEmail        Kind = "verify_email"         // link and code to confirm an address
	PasswordReset      Kind = "password_reset"       // link to set a new password
	PasswordChanged    Kind = "password_changed"     // notice; Link optional (where to act if it was not them)
	MagicLink          Kind = "magic_link"           // link that logs in
	LoginCode          Kind = "login_code"           // one-time code that logs in
	EmailChangeConfirm Kind = "email_change_confirm" // to the new address: link to confirm it
	EmailChangeNotice  Kind = "email_change_notice"  // to the old address: link that undoes the change
	Invitation         Kind = "invitation"           // link to accept an invitation
	SecurityNotice     Kind = "security_notice"      // notice that a security setting changed (Data.Change); Link optional (where to act if it was not them)
)

// Kinds returns every message kind.
func Kinds() []Kind {
	return []Kind{VerifyEmail, PasswordReset, PasswordChanged, MagicLink, LoginCode, EmailChangeConfirm, EmailChangeNotice, Invitation, SecurityNotice}
}

// The changes a security_notice reports (Data.Change).
const (
	ChangeTOTPAdded      = "totp_added"      // an authenticator app was set up for two-step verification
	ChangeTOTPRemoved    = "totp_removed"    // the authenticator app was removed
	ChangeRecoveryCodes  = "recovery_codes"  // new recovery codes were created; the old ones no longer work
	ChangePasskeyAdded   = "passkey_added"   // a passkey was added
	ChangePasskeyRemoved = "passkey_removed" // a passkey was removed
)

// SecurityChanges returns every change a security_notice reports.
func SecurityChanges() []string {
	return []string{ChangeTOTPAdded, ChangeTOTPRemoved, ChangeRecoveryCodes, ChangePasskeyAdded, ChangePasskeyRemoved}
}

// Langs returns the languages templates exist in, the fallback first.
func Langs() []string { return []string{"en", "de"} }

type need int

const (
	no need = iota
	optional
	required
)

type kindSpec struct {
	link, code need
	change     need          // Data.Change, one of SecurityChanges
	expiry     time.Duration // shown in the mail; 0: none
}

func spec(k Kind) (kindSpec, bool) {
	switch k {
	case VerifyEmail:
		return kindSpec{link: required, code: required, expiry: 24 * time.Hour}, true
	case PasswordReset:
		return kindSpec{link: required, expiry: 30 * time.Minute}, true
	case PasswordChanged:
		return kindSpec{link: optional}, true
	case MagicLink:
		return kindSpec{link: required, expiry: 15 * time.Minute}, true
	case LoginCode:
		return kindSpec{code: required, expiry: 10 * time.Minute}, true
	case EmailChangeConfirm:
		return kindSpec{link: required, expiry: 24 * time.Hour}, true
	case EmailChangeNotice:
		return kindSpec{link: required, expiry: 72 * time.Hour}, true
	case Invitation:
		return kindSpec{link: required, expiry: 7 * 24 * time.Hour}, true
	case SecurityNotice:
		return kindSpec{link: optional, change: required}, true
	}
	return kindSpec{}, false
}

// DefaultExpiry is how long the link or code of kind k is said to be valid
// when Data.ExpiresIn is zero; the code that issues the token should use
// the same value. Zero for kinds that mention no expiry.
func (k Kind) DefaultExpiry() time.Duration {
	s, _ := spec(k)
	return s.expiry
}

// Brand is what a mail shows of its tenant.
type Brand struct {
	Slug    string // selects <TemplateDir>/<slug>/ overrides; may be empty
	Name    string // display name
	LogoURL string // https URL of the logo, or empty
	Color   string // "#rrggbb"; anything else gives DefaultColor
}

// BrandOf returns tenant t's branding.
func BrandOf(t *ciam.Tenant) Brand {
	return Brand{Slug: t.Slug, Name: t.DisplayName, LogoURL: t.LogoURL, Color: t.PrimaryColor}
}

// Data is what a template is filled with. Which of Link, Code and Change a
// kind needs is listed with the kinds.
type Data struct {
	Tenant Brand
	Locale string // the recipient's BCP 47 locale; see Lang
	Name   string // the recipient's name; may be empty
	Email  string // the recipient's address
	// Link is the absolute URL the mail points to, built by the caller from
	// the configured public URL: https, or http only to localhost.
	Link      string
	Code      string        // six digits
	ExpiresIn time.Duration // validity of Link or Code; 0: the kind's DefaultExpiry
	NewEmail  string        // email_change_notice: the new address, shown masked
	Inviter   string        // invitation: who invited; may be empty
	// Change is which change a security_notice reports: one of
	// SecurityChanges ("totp_added", "totp_removed", "recovery_codes",
	// "passkey_added", "passkey_removed"). Other kinds take none.
	Change string
}

// NewData fills Data with the tenant's branding and the user's name,
// address and locale.
func NewData(t *ciam.Tenant, u *ciam.User) Data {
	d := Data{}
	if t != nil {
		d.Tenant = BrandOf(t)
	}
	if u != nil {
		d.Name, d.Email, d.Locale = u.Name, u.Email, u.Locale
	}
	return d
}

// Rendered is a message's content in one language.
type Rendered struct {
	Kind    Kind
	Lang    string
	Subject string
	Text    string
	HTML    string
}

// Message returns the rendered content as a message from and to the given
// addresses; the caller adds headers such as Message-ID.
func (r *Rendered) Message(from, to string) *Message {
	return &Message{From: from, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
}

// Renderer fills the message templates. The embedded templates can be
// replaced file by file from a directory (see the package documentation).
// It is safe for concurrent use.
type Renderer struct {
	overrides fs.FS // nil: embedded templates only
}

// NewRenderer returns a renderer whose templates in dir (may be empty)
// replace the embedded ones. It renders every kind in every language, for
// the deployment and for each tenant directory in dir, so a broken or
// misnamed template is reported now rather than when a mail is due.
func NewRenderer(dir string) (*Renderer, error) {
	r := &Renderer{}
	if dir == "" {
		return r, r.check("")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("mail template_dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mail template_dir %s: not a directory", dir)
	}
	r.overrides = os.DirFS(dir)
	var errs []error
	entries, err := fs.ReadDir(r.overrides, ".")
	if err != nil {
		return nil, fmt.Errorf("mail template_dir: %w", err)
	}
	errs = append(errs, r.check(""))
	for _, e := range entries {
		switch {
		case e.IsDir() && ciam.ValidSlug(e.Name()):
			sub, err := fs.ReadDir(r.overrides, e.Name())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range sub {
				if !knownFile(f.Name()) {
					errs = append(errs, fmt.Errorf("mail template_dir: unknown file %s/%s: %s", e.Name(), f.Name(), fileNameHint))
				}
			}
			errs = append(errs, r.check(e.Name()))
		case e.IsDir():
			errs = append(errs, fmt.Errorf("mail template_dir: directory %s is not a tenant slug", e.Name()))
		case !knownFile(e.Name()) && !strings.HasPrefix(e.Name(), "."):
			errs = append(errs, fmt.Errorf("mail template_dir: unknown file %s: %s", e.Name(), fileNameHint))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

const fileNameHint = "want layout.html, layout.txt, footer.LANG.html, footer.LANG.txt or KIND.LANG.html / KIND.LANG.txt with LANG en or de"

var fileName = regexp.MustCompile(`^(layout\.(html|txt)|(footer|[a-z_]+)\.(en|de)\.(html|txt))$`)

func knownFile(name string) bool {
	m := fileName.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	if m[3] == "" || m[3] == "footer" {
		return true
	}
	_, ok := spec(Kind(m[3]))
	return ok
}

// check renders every kind in every language for tenant slug.
func (r *Renderer) check(slug string) error {
	var errs []error
	for _, k := range Kinds() {
		s, _ := spec(k)
		changes := []string{""}
		if s.change != no {
			changes = SecurityChanges()
		}
		for _, l := range Langs() {
			for _, c := range changes {
				d := Data{
					Tenant: Brand{Slug: slug, Name: "Example", LogoURL: "https://example.com/logo.png", Color: DefaultColor},
					Locale: l, Name: "Ada", Email: "ada@example.com", NewEmail: "ada@example.org", Inviter: "Grace", Change: c,
				}
				if s.link != no {
					d.Link = "https://example.com/x"
				}
				if s.code != no {
					d.Code = "123456"
				}
				if _, err := r.Render(k, d); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

var codePattern = regexp.MustCompile(`^[0-9]{6}$`)

// view is what the templates see.
type view struct {
	Lang      string
	Subject   string // set for the HTML part
	Brand     viewBrand
	Name      string
	Email     string
	Link      string
	Code      string
	Expires   string // "30 minutes", "30 Minuten"
	NewEmail  string // masked
	Inviter   string
	Change    string // security_notice: one of SecurityChanges
	HasLink   bool
	HasCode   bool
	HasExpiry bool
}

type viewBrand struct {
	Name      string
	LogoURL   string
	Color     string
	TextColor string // readable on Color
}

// Render fills kind's templates for d in the recipient's language.
func (r *Renderer) Render(kind Kind, d Data) (*Rendered, error) {
	s, ok := spec(kind)
	if !ok {
		return nil, fmt.Errorf("mail: unknown message kind %q", kind)
	}
	lang := Lang(d.Locale)
	if d.Link != "" || s.link == required {
		if s.link == no {
			return nil, fmt.Errorf("mail: %s takes no link", kind)
		}
		if err := checkLink(d.Link); err != nil {
			return nil, fmt.Errorf("mail: %s: link %q refused: %w", kind, d.Link, err)
		}
	}
	if d.Code != "" || s.code == required {
		if s.code == no {
			return nil, fmt.Errorf("mail: %s takes no code", kind)
		}
		if !codePattern.MatchString(d.Code) {
			return nil, fmt.Errorf("mail: %s: code %q refused: want six digits", kind, d.Code)
		}
	}
	if d.Change != "" || s.change == required {
		if s.change == no {
			return nil, fmt.Errorf("mail: %s takes no change", kind)
		}
		if !slices.Contains(SecurityChanges(), d.Change) {
			return nil, fmt.Errorf("mail: %s: change %q refused: want one of %s", kind, d.Change, strings.Join(SecurityChanges(), ", "))
		}
	}
	if d.Tenant.Slug != "" && !ciam.ValidSlug(d.Tenant.Slug) {
		return nil, fmt.Errorf("mail: tenant slug %q is not valid", d.Tenant.Slug)
	}
	expires := d.ExpiresIn
	if expires <= 0 {
		expires = s.expiry
	}
	name := clip(oneLine(d.Tenant.Name), 100)
	if name == "" {
		name = d.Tenant.Slug
	}
	color := brandColor(d.Tenant.Color)
	v := view{
		Lang:  lang,
		Brand: viewBrand{Name: name, LogoURL: logoURL(d.Tenant.LogoURL), Color: color, TextColor: textOn(color)},
		Name:  clip(oneLine(d.Name), 100), Email: oneLine(d.Email),
		Link: d.Link, Code: d.Code, HasLink: d.Link != "", HasCode: d.Code != "",
		NewEmail: maskEmail(oneLine(d.NewEmail)), Inviter: clip(oneLine(d.Inviter), 100),
		Change: d.Change,
	}
	if s.expiry > 0 {
		v.Expires, v.HasExpiry = HumanDuration(expires, lang), true
	}

	files := []string{"layout", "footer." + lang, string(kind) + "." + lang}
	text, err := r.parseText(d.Tenant.Slug, files)
	if err != nil {
		return nil, err
	}
	var subj, body bytes.Buffer
	if err := text.ExecuteTemplate(&subj, "subject", v); err != nil {
		return nil, fmt.Errorf("mail: %s.%s subject: %w", kind, lang, err)
	}
	if err := text.ExecuteTemplate(&body, "layout", v); err != nil {
		return nil, fmt.Errorf("mail: %s.%s.txt: %w", kind, lang, err)
	}
	v.Subject = oneLine(subj.String())
	if v.Subject == "" {
		return nil, fmt.Errorf("mail: %s.%s.txt: the subject is empty", kind, lang)
	}
	html, err := r.parseHTML(d.Tenant.Slug, files)
	if err != nil {
		return nil, err
	}
	var page bytes.Buffer
	if err := html.ExecuteTemplate(&page, "layout", v); err != nil {
		return nil, fmt.Errorf("mail: %s.%s.html: %w", kind, lang, err)
	}
	return &Rendered{Kind: kind, Lang: lang, Subject: v.Subject, Text: tidyText(body.String()), HTML: page.String()}, nil
}

// read returns the first of <slug>/<name> and <name> in the overrides,
// then the embedded file.
func (r *Renderer) read(slug, name string) (string, error) {
	if r.overrides != nil {
		var tries []string
		if slug != "" {
			tries = append(tries, path.Join(slug, name))
		}
		for _, p := range append(tries, name) {
			b, err := fs.ReadFile(r.overrides, p)
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("mail template %s: %w", p, err)
			}
		}
	}
	b, err := embedded.ReadFile("templates/" + name)
	if err != nil {
		return "", fmt.Errorf("mail template %s: %w", name, err)
	}
	return string(b), nil
}

func (r *Renderer) parseText(slug string, files []string) (*texttemplate.Template, error) {
	t := texttemplate.New("").Option("missingkey=error")
	for _, f := range files {
		src, err := r.read(slug, f+".txt")
		if err != nil {
			return nil, err
		}
		if _, err := t.New(f + ".txt").Parse(src); err != nil {
			return nil, fmt.Errorf("mail template %s: %w", where(slug, f+".txt"), err)
		}
	}
	return t, nil
}

func (r *Renderer) parseHTML(slug string, files []string) (*htmltemplate.Template, error) {
	t := htmltemplate.New("").Option("missingkey=error")
	for _, f := range files {
		src, err := r.read(slug, f+".html")
		if err != nil {
			return nil, err
		}
		if _, err := t.New(f + ".html").Parse(src); err != nil {
			return nil, fmt.Errorf("mail template %s: %w", where(slug, f+".html"), err)
		}
	}
	return t, nil
}

func where(slug, name string) string {
	if slug == "" {
		return name
	}
	return slug + "/" + name
}

// tidyText trims trailing spaces and collapses runs of blank lines.
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	blank := true
	for _, l := range lines {
		if l != "-- " { // the signature separator keeps its space
			l = strings.TrimRight(l, " \t")
		}
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}
