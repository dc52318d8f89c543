package ui

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales/*.json
var localeFS embed.FS

// Languages the hosted pages speak, the first being the fallback.
var supported = []language.Tag{language.English, language.German}

// catalogue holds the message bundle and the Accept-Language matcher.
type catalogue struct {
	bundle  *i18n.Bundle
	matcher language.Matcher
	locs    map[string]*i18n.Localizer
}

func newCatalogue() (*catalogue, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("json", json.Unmarshal)
	for _, f := range []string{"locales/en.json", "locales/de.json"} {
		if _, err := b.LoadMessageFileFS(localeFS, f); err != nil {
			return nil, fmt.Errorf("load %s: %w", f, err)
		}
	}
	c := &catalogue{bundle: b, matcher: language.NewMatcher(supported), locs: map[string]*i18n.Localizer{}}
	for _, t := range supported {
		c.locs[t.String()] = i18n.NewLocalizer(b, t.String())
	}
	return c, nil
}

// langCookie remembers the language a person picked with the switcher.
const langCookie = "gatehouse_lang"

// pick chooses the page language: an explicit ?lang=, then the switcher's
// cookie, then Accept-Language.
func (c *catalogue) pick(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); c.locs[l] != nil {
		return l
	}
	if ck, err := r.Cookie(langCookie); err == nil && c.locs[ck.Value] != nil {
		return ck.Value
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, idx, _ := c.matcher.Match(tags...)
	return supported[idx].String()
}

// translate renders message id in lang; a missing message falls back to
// English, then to the id itself, so a page never breaks on a catalogue gap.
func (c *catalogue) translate(lang, id string, data map[string]any) string {
	loc := c.locs[lang]
	if loc == nil {
		loc = c.locs["en"]
	}
	s, err := loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil || s == "" {
		return ""
	}
	return s
}
