package mail_test

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ciam"
	"github.com/gatehouse-id/gatehouse/internal/mail"
)

func acme() *ciam.Tenant {
	return &ciam.Tenant{Slug: "acme", DisplayName: "Acme Shop", LogoURL: "https://cdn.acme.test/logo.png", PrimaryColor: "#FFCC00"}
}

// data returns complete data for kind: a link and a code where it takes them.
func data(kind mail.Kind, locale string) mail.Data {
	d := mail.NewData(acme(), &ciam.User{Email: "ada@example.com", Name: "Ada Lovelace", Locale: locale})
	switch kind {
	case mail.LoginCode:
		d.Code = "042917"
	case mail.VerifyEmail:
		d.Code = "042917"
		d.Link = "https://id.acme.test/t/acme/verify?token=abc&lang=de"
	default:
		d.Link = "https://id.acme.test/t/acme/" + string(kind) + "?token=abc"
	}
	switch kind {
	case mail.EmailChangeNotice:
		d.NewEmail = "ada.new@example.org"
	case mail.Invitation:
		d.Inviter = "Grace Hopper"
	case mail.SecurityNotice:
		d.Change = mail.ChangePasskeyAdded
	}
	return d
}

func renderer(t *testing.T, dir string) *mail.Renderer {
	t.Helper()
	r, err := mail.NewRenderer(dir)
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

var attrURL = regexp.MustCompile(`(?i)\b(src|href|background|action|srcset|poster)\s*=\s*"([^"]*)"`)

// checkResources fails when the HTML loads or links anything but the link
// and the logo.
func checkResources(t *testing.T, page, link, logo string) {
	t.Helper()
	for _, m := range attrURL.FindAllStringSubmatch(page, -1) {
		u := html.UnescapeString(m[2])
		if u != link && u != logo {
			t.Errorf("HTML refers to %s=%q; only the link and the logo are allowed", m[1], u)
		}
	}
	for _, bad := range []string{"<link", "<script", "url(", "@import", "<iframe", "<object", "<form"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
}

func TestRenderEveryKind(t *testing.T) {
	r := renderer(t, "")
	texts := map[string]struct{ greeting, expiry30, expiry72, expiry10 string }{
		"en": {"Hello Ada Lovelace,", "30 minutes", "72 hours", "10 minutes"},
		"de": {"Hallo Ada Lovelace,", "30 Minuten", "72 Stunden", "10 Minuten"},
	}
	for _, kind := range mail.Kinds() {
		for locale, lang := range map[string]string{"en": "en", "en-GB": "en", "de": "de", "de-AT": "de", "fr": "en", "": "en"} {
			t.Run(string(kind)+"/"+locale, func(t *testing.T) {
				d := data(kind, locale)
				out, err := r.Render(kind, d)
				if err != nil {
					t.Fatal(err)
				}
				if out.Lang != lang || out.Kind != kind {
					t.Errorf("lang %q kind %q, want %q %q", out.Lang, out.Kind, lang, kind)
				}
				if !strings.Contains(out.Subject, "Acme Shop") && kind != mail.Invitation {
					t.Errorf("subject %q does not name the tenant", out.Subject)
				}
				if strings.ContainsAny(out.Subject, "\r\n") || out.Subject == "" {
					t.Errorf("subject %q", out.Subject)
				}
				want := texts[lang]
				for part, body := range map[string]string{"text": out.Text, "html": out.HTML} {
					if !strings.Contains(body, want.greeting) {
						t.Errorf("%s part lacks %q", part, want.greeting)
					}
					if d.Code != "" && !strings.Contains(body, d.Code) {
						t.Errorf("%s part lacks the code", part)
					}
					exp := map[mail.Kind]string{mail.PasswordReset: want.expiry30, mail.EmailChangeNotice: want.expiry72, mail.LoginCode: want.expiry10}[kind]
					if exp != "" && !strings.Contains(body, exp) {
						t.Errorf("%s part lacks the expiry %q", part, exp)
					}
					if strings.Contains(body, "{{") || strings.Contains(body, "<no value>") {
						t.Errorf("%s part has template residue", part)
					}
				}
				if !strings.Contains(out.Text, "\n-- \nAcme Shop ") {
					t.Errorf("text part lacks the signature:\n%s", out.Text)
				}
				if d.Link != "" {
					if !strings.Contains(out.Text, d.Link) {
						t.Errorf("text part lacks the link %s", d.Link)
					}
					if !strings.Contains(out.HTML, `href="`+html.EscapeString(d.Link)+`"`) {
						t.Errorf("HTML part lacks the link %s", d.Link)
					}
				}
				// Branding: logo, colour (lower-cased), name; the HTML is a
				// complete document in the right language.
				for _, s := range []string{`<img src="https://cdn.acme.test/logo.png" alt="Acme Shop"`, "#ffcc00", `<html lang="` + lang + `">`, "<title>" + html.EscapeString(out.Subject) + "</title>"} {
					if !strings.Contains(out.HTML, s) {
						t.Errorf("HTML lacks %q", s)
					}
				}
				if d.Link != "" && !strings.Contains(out.HTML, "color:#111111") {
					t.Errorf("button text on a yellow button is not dark")
				}
				checkResources(t, out.HTML, d.Link, "https://cdn.acme.test/logo.png")
				if kind == mail.EmailChangeNotice && (strings.Contains(out.Text, "ada.new@") || !strings.Contains(out.Text, "a***@example.org")) {
					t.Errorf("the new address is not masked in:\n%s", out.Text)
				}
				if kind == mail.Invitation && !strings.Contains(out.Subject, "Grace Hopper") {
					t.Errorf("invitation subject %q does not name the inviter", out.Subject)
				}
				msg := out.Message("Acme <no-reply@acme.test>", "ada@example.com")
				if msg.Text != out.Text || msg.HTML != out.HTML || msg.Subject != out.Subject {
					t.Error("Message does not carry the rendered parts")
				}
			})
		}
	}
}

func TestRenderSecurityNotice(t *testing.T) {
	r := renderer(t, "")
	want := map[string]map[string]struct{ subject, body string }{
		"en": {
			"totp_added":      {"An authenticator app was set up for your Acme Shop account", "An authenticator app was just set up for two-step verification"},
			"totp_removed":    {"The authenticator app was removed from your Acme Shop account", "The authenticator app for two-step verification was just removed"},
			"recovery_codes":  {"New recovery codes were created for your Acme Shop account", "The old recovery codes no longer work."},
			"passkey_added":   {"A passkey was added to your Acme Shop account", "A passkey was just added to your account."},
			"passkey_removed": {"A passkey was removed from your Acme Shop account", "A passkey was just removed from your account."},
		},
		"de": {
			"totp_added":      {"Für Ihr Konto bei Acme Shop wurde eine Authenticator-App eingerichtet", "eine Authenticator-App für die Anmeldung in zwei Schritten eingerichtet"},
			"totp_removed":    {"Die Authenticator-App wurde aus Ihrem Konto bei Acme Shop entfernt", "Die Authenticator-App für die Anmeldung in zwei Schritten wurde soeben aus Ihrem Konto entfernt."},
			"recovery_codes":  {"Für Ihr Konto bei Acme Shop wurden neue Wiederherstellungscodes erstellt", "Die bisherigen Wiederherstellungscodes sind nicht mehr gültig."},
			"passkey_added":   {"Ihrem Konto bei Acme Shop wurde ein Passkey hinzugefügt", "Ihrem Konto wurde soeben ein Passkey hinzugefügt."},
			"passkey_removed": {"Aus Ihrem Konto bei Acme Shop wurde ein Passkey entfernt", "Aus Ihrem Konto wurde soeben ein Passkey entfernt."},
		},
	}
	advice := map[string][]string{
		"en": {"If you made this change, there is nothing to do.", "reset your password now", "check the active sessions and the security settings of your account"},
		"de": {"Wenn Sie das waren, müssen Sie nichts tun.", "setzen Sie Ihr Passwort jetzt zurück", "prüfen Sie die aktiven Sitzungen und die Sicherheitseinstellungen Ihres Kontos"},
	}
	if len(mail.SecurityChanges()) != len(want["en"]) {
		t.Fatalf("SecurityChanges() = %q; the test knows %d", mail.SecurityChanges(), len(want["en"]))
	}
	for _, lang := range mail.Langs() {
		for _, change := range mail.SecurityChanges() {
			for _, link := range []string{"", "https://id.acme.test/t/acme/forgot"} {
				t.Run(lang+"/"+change+"/link="+link, func(t *testing.T) {
					w, ok := want[lang][change]
					if !ok {
						t.Fatalf("no expected text for %s/%s", lang, change)
					}
					d := data(mail.SecurityNotice, lang)
					d.Change, d.Link = change, link
					out, err := r.Render(mail.SecurityNotice, d)
					if err != nil {
						t.Fatal(err)
					}
					if out.Subject != w.subject {
						t.Errorf("subject %q, want %q", out.Subject, w.subject)
					}
					for part, body := range map[string]string{"text": out.Text, "html": html.UnescapeString(out.HTML)} {
						for _, s := range append([]string{w.body}, advice[lang]...) {
							if !strings.Contains(body, s) {
								t.Errorf("%s part lacks %q:\n%s", part, s, body)
							}
						}
						// Only the one change is reported.
						for other, o := range want[lang] {
							if other != change && strings.Contains(body, o.body) {
								t.Errorf("%s part of %s also reports %s", part, change, other)
							}
						}
					}
					if link == "" && strings.Contains(out.HTML, "href=") {
						t.Errorf("a link without Link:\n%s", out.HTML)
					}
					if link != "" && (!strings.Contains(out.Text, link) || !strings.Contains(out.HTML, `href="`+link+`"`)) {
						t.Errorf("the link is missing:\n%s\n%s", out.Text, out.HTML)
					}
					checkResources(t, out.HTML, link, "https://cdn.acme.test/logo.png")
				})
			}
		}
	}
	if mail.SecurityNotice.DefaultExpiry() != 0 {
		t.Error("security_notice mentions an expiry")
	}
}

func TestRenderExpiry(t *testing.T) {
	r := renderer(t, "")
	d := data(mail.MagicLink, "de")
	d.ExpiresIn = 5 * time.Minute
	out, err := r.Render(mail.MagicLink, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Text, "5 Minuten lang gültig") {
		t.Errorf("ExpiresIn not shown:\n%s", out.Text)
	}
	if mail.PasswordReset.DefaultExpiry() != 30*time.Minute || mail.LoginCode.DefaultExpiry() != 10*time.Minute ||
		mail.EmailChangeNotice.DefaultExpiry() != 72*time.Hour || mail.PasswordChanged.DefaultExpiry() != 0 {
		t.Error("default expiries changed")
	}
	for _, c := range []struct {
		d    time.Duration
		lang string
		want string
	}{
		{time.Minute, "en", "1 minute"}, {30 * time.Second, "en", "1 minute"}, {90 * time.Second, "en", "2 minutes"},
		{time.Hour, "de", "1 Stunde"}, {90 * time.Minute, "en", "90 minutes"}, {72 * time.Hour, "en", "72 hours"},
		{7 * 24 * time.Hour, "en", "7 days"}, {7 * 24 * time.Hour, "de", "7 Tage"}, {24 * time.Hour, "de", "24 Stunden"},
	} {
		if got := mail.HumanDuration(c.d, c.lang); got != c.want {
			t.Errorf("HumanDuration(%s, %s) = %q, want %q", c.d, c.lang, got, c.want)
		}
	}
}

func TestRenderWithoutOptionalParts(t *testing.T) {
	r := renderer(t, "")
	d := mail.NewData(&ciam.Tenant{Slug: "plain", DisplayName: "Plain"}, &ciam.User{Email: "bob@example.com"})
	out, err := r.Render(mail.PasswordChanged, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Text, "Hello,") || strings.Contains(out.HTML, "<img") || strings.Contains(out.HTML, "href=") {
		t.Errorf("no name, logo or link expected:\n%s\n%s", out.Text, out.HTML)
	}
	if !strings.Contains(out.HTML, mail.DefaultColor) {
		t.Error("no default colour")
	}
	d.Link = "https://id.example.com/t/plain/recover"
	if out, err = r.Render(mail.PasswordChanged, d); err != nil || !strings.Contains(out.HTML, `href="https://id.example.com/t/plain/recover"`) {
		t.Errorf("optional link not rendered: %v", err)
	}
}

func TestRenderEscapes(t *testing.T) {
	r := renderer(t, "")
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)> & Co` + "\r\nBcc: victim@example.com"
	d := data(mail.Invitation, "en")
	d.Tenant.Name = evil
	d.Name = evil
	d.Inviter = evil
	d.Tenant.LogoURL = `javascript:alert(3)`
	d.Tenant.Color = `red;background:url(https://evil.test/x)`
	out, err := r.Render(mail.Invitation, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<img src=x", "onerror=alert(2)>", "javascript:", "evil.test", `"><img`} {
		if strings.Contains(out.HTML, bad) {
			t.Errorf("HTML contains %q:\n%s", bad, out.HTML)
		}
	}
	if !strings.Contains(out.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the display name is not escaped as text:\n%s", out.HTML)
	}
	if strings.ContainsAny(out.Subject, "\r\n") || strings.Contains(out.Text, "\nBcc:") {
		t.Errorf("line breaks of the name survived: subject %q", out.Subject)
	}
	if !strings.Contains(out.HTML, mail.DefaultColor) {
		t.Error("an invalid colour is not replaced by the default")
	}
	checkResources(t, out.HTML, d.Link, "")
}

func TestRenderRefuses(t *testing.T) {
	r := renderer(t, "")
	for _, link := range []string{
		"", "/t/acme/verify?token=abc", "id.example.com/verify", "http://id.example.com/verify",
		"javascript:alert(1)", "data:text/html,hi", "ftp://id.example.com/x", "https://user:pw@id.example.com/x",
		"https://id.example.com/a b", `https://id.example.com/"><script>`, "https:///nohost", "http://localhost.evil.test/x",
		"https://id.example.com/\r\nx",
	} {
		d := data(mail.PasswordReset, "en")
		d.Link = link
		if _, err := r.Render(mail.PasswordReset, d); err == nil {
			t.Errorf("link %q accepted", link)
		}
	}
	for _, link := range []string{"http://localhost:8080/t/acme/x", "http://127.0.0.1:8080/t/acme/x", "http://[::1]/x", "https://id.example.com/t/acme/x?token=a%20b&y=1#f"} {
		d := data(mail.PasswordReset, "en")
		d.Link = link
		if _, err := r.Render(mail.PasswordReset, d); err != nil {
			t.Errorf("link %q refused: %v", link, err)
		}
	}
	for _, code := range []string{"", "12345", "1234567", "12a456", "١٢٣٤٥٦"} {
		d := data(mail.LoginCode, "en")
		d.Code = code
		if _, err := r.Render(mail.LoginCode, d); err == nil {
			t.Errorf("code %q accepted", code)
		}
	}
	d := data(mail.LoginCode, "en")
	d.Link = "https://id.example.com/x"
	if _, err := r.Render(mail.LoginCode, d); err == nil {
		t.Error("a link on login_code accepted")
	}
	for _, change := range []string{"", "nonsense", "TOTP_ADDED", "totp_added ", "password_changed"} {
		d := data(mail.SecurityNotice, "en")
		d.Change = change
		_, err := r.Render(mail.SecurityNotice, d)
		if err == nil {
			t.Errorf("change %q accepted", change)
		} else if !strings.Contains(err.Error(), "security_notice: change") || !strings.Contains(err.Error(), "totp_added") {
			t.Errorf("change %q: unclear error %q", change, err)
		}
	}
	d = data(mail.PasswordChanged, "en")
	d.Change = mail.ChangeTOTPAdded
	if _, err := r.Render(mail.PasswordChanged, d); err == nil {
		t.Error("a change on password_changed accepted")
	}
	if _, err := r.Render("nonsense", data(mail.MagicLink, "en")); err == nil {
		t.Error("unknown kind accepted")
	}
	d = data(mail.MagicLink, "en")
	d.Tenant.Slug = "../etc"
	if _, err := r.Render(mail.MagicLink, d); err == nil {
		t.Error("invalid slug accepted")
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenderOverrides(t *testing.T) {
	dir := t.TempDir()
	// The deployment replaces the German verification HTML and the layout
	// of the text part; tenant acme replaces the English verification text
	// (with its subject) and the German footer.
	write(t, filepath.Join(dir, "verify_email.de.html"), `{{define "body"}}<p>DEPLOY-DE {{.Brand.Name}} {{.Code}}</p>{{template "button" .}}{{end}}{{define "button_label"}}Los{{end}}`)
	write(t, filepath.Join(dir, "layout.txt"), "{{define \"layout\"}}DEPLOY-LAYOUT\n{{template \"body\" .}}\n{{template \"footer\" .}}{{end}}")
	write(t, filepath.Join(dir, "acme", "verify_email.en.txt"), `{{define "subject"}}ACME subject {{.Code}}{{end}}{{define "body"}}ACME-EN {{.Link}}{{end}}`)
	write(t, filepath.Join(dir, "acme", "footer.de.html"), `{{define "footer"}}ACME-FOOTER{{end}}{{define "link_fallback"}}x{{end}}{{define "greeting"}}Servus{{end}}`)
	write(t, filepath.Join(dir, ".keep"), "")
	r := renderer(t, dir)

	render := func(slug, locale string, kind mail.Kind) *mail.Rendered {
		t.Helper()
		d := data(kind, locale)
		d.Tenant.Slug = slug
		out, err := r.Render(kind, d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	acmeEN := render("acme", "en", mail.VerifyEmail)
	if acmeEN.Subject != "ACME subject 042917" || !strings.Contains(acmeEN.Text, "DEPLOY-LAYOUT\nACME-EN https://id.acme.test/") {
		t.Errorf("acme en: %q\n%s", acmeEN.Subject, acmeEN.Text)
	}
	acmeDE := render("acme", "de", mail.VerifyEmail)
	if !strings.Contains(acmeDE.HTML, "DEPLOY-DE Acme Shop 042917") || !strings.Contains(acmeDE.HTML, "ACME-FOOTER") || !strings.Contains(acmeDE.HTML, ">Los</a>") {
		t.Errorf("acme de HTML:\n%s", acmeDE.HTML)
	}
	if !strings.HasPrefix(acmeDE.Subject, "Bestätigen Sie") {
		t.Errorf("acme de subject %q is not the embedded one", acmeDE.Subject)
	}
	otherEN := render("other", "en", mail.VerifyEmail)
	if strings.Contains(otherEN.Text, "ACME") || !strings.Contains(otherEN.Subject, "Confirm your email address") {
		t.Errorf("tenant override leaked to another tenant: %q", otherEN.Subject)
	}
	otherDE := render("other", "de", mail.PasswordReset)
	if strings.Contains(otherDE.HTML, "ACME-FOOTER") || !strings.Contains(otherDE.Text, "DEPLOY-LAYOUT") {
		t.Error("other tenant did not get the deployment layout and the embedded footer")
	}

	// An edit on disk applies to the next mail.
	write(t, filepath.Join(dir, "acme", "verify_email.en.txt"), `{{define "subject"}}ACME v2{{end}}{{define "body"}}v2{{end}}`)
	if got := render("acme", "en", mail.VerifyEmail).Subject; got != "ACME v2" {
		t.Errorf("edited override not used: %q", got)
	}
}

func TestRendererRejectsBadTemplateDir(t *testing.T) {
	cases := map[string]map[string]string{
		"unknown file":    {"verfy_email.en.html": "x"},
		"unknown lang":    {"verify_email.fr.html": "x"},
		"unknown in slug": {"acme/welcome.en.txt": "x"},
		"bad slug dir":    {"Acme_Corp/verify_email.en.txt": "x"},
		"parse error":     {"magic_link.en.html": `{{define "body"}}{{if}}{{end}}`},
		"missing field":   {"acme/login_code.de.txt": `{{define "subject"}}{{.Password}}{{end}}{{define "body"}}x{{end}}`},
		"empty subject":   {"login_code.en.txt": `{{define "subject"}} {{end}}{{define "body"}}x{{end}}`},
		"no body":         {"magic_link.de.html": `<p>hi</p>`},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, c := range files {
				write(t, filepath.Join(dir, f), c)
			}
			if _, err := mail.NewRenderer(dir); err == nil {
				t.Error("accepted")
			} else {
				t.Log(err)
			}
		})
	}
	if _, err := mail.NewRenderer(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory accepted")
	}
}

func TestLang(t *testing.T) {
	for in, want := range map[string]string{"de": "de", "de-AT": "de", "de_CH": "de", "DE-de": "de", "en": "en", "en-US": "en", "fr": "en", "": "en", "dexx": "en", "nl-DE": "en"} {
		if got := mail.Lang(in); got != want {
			t.Errorf("Lang(%q) = %q, want %q", in, got, want)
		}
	}
}
