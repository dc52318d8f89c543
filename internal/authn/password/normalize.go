package password

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns pw in Unicode normalisation form NFKC, the form in which
// a password is counted, hashed and compared, so that the same password typed
// with composed or decomposed accents, or with full-width characters, is the
// same password. It never shortens pw beyond what NFKC itself does.
func Normalize(pw string) string {
	return norm.NFKC.String(pw)
}

// fold is the key a password is looked up by in a Blocklist: its NFKC form in
// lower case (normalised again, as lower-casing can leave a string that is not
// NFKC). internal/genblocklist folds the same way and must keep doing so.
func fold(pw string) string {
	return norm.NFKC.String(strings.ToLower(norm.NFKC.String(pw)))
}
