package password

import (
	"compress/gzip"
	_ "embed" // for blocklistGz
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"strings"
	"unicode"
)

// blocklistGz is the common-password list, one folded entry a line, most
// common first. README.md in this directory says where it comes from and
// internal/genblocklist how it was built.
//
//go:embed blocklist.txt.gz
var blocklistGz string

// Blocklist is a set of passwords to refuse. Membership is case-insensitive
// on the NFKC form. It is immutable and safe for concurrent use.
//
// It is a compact hash set: the entries in one string, each ending in a line
// break, and an open-addressing table of their offsets, at most half full.
// That takes about 20 bytes an entry, and building it needs no sort.
type Blocklist struct {
	seed  maphash.Seed
	data  string   // folded entries, each followed by '\n'
	slots []uint32 // 0 is empty; otherwise 1 + the offset of an entry in data
	n     int
}

// LoadBlocklist decompresses the embedded list of common passwords: the
// 200,000 most common passwords of at least ciam.PasswordMinMultiFactor
// characters in a leaked list of ten million (README.md). Shorter ones are
// left out because Policy refuses them for their length first. Call it once
// at start-up and share the result; it takes a few tens of milliseconds and
// keeps about 4 MB.
func LoadBlocklist() (*Blocklist, error) {
	text, err := gunzip(blocklistGz)
	if err != nil {
		return nil, fmt.Errorf("password: blocklist: %w", err)
	}
	bb := newBuilder(strings.Count(text, "\n")+1, len(text))
	for line := range strings.Lines(text) {
		bb.add(strings.TrimSuffix(line, "\n"))
	}
	return bb.finish(), nil
}

// NewBlocklist returns a Blocklist of words, for example a tenant's own list
// of words to refuse. Empty and whitespace-only words, and words with a line
// break, are ignored.
func NewBlocklist(words []string) *Blocklist {
	size := 0
	for _, w := range words {
		size += len(w) + 1
	}
	bb := newBuilder(len(words), size)
	for _, w := range words {
		bb.add(w)
	}
	return bb.finish()
}

// Contains reports whether pw is on the list, ignoring case, after NFKC
// normalisation. A nil Blocklist contains nothing.
func (b *Blocklist) Contains(pw string) bool {
	if b == nil || b.n == 0 {
		return false
	}
	k := fold(pw)
	mask := uint64(len(b.slots) - 1)
	for i := maphash.String(b.seed, k) & mask; ; i = (i + 1) & mask {
		s := b.slots[i]
		if s == 0 {
			return false
		}
		e := b.data[s-1:]
		if len(e) > len(k) && e[len(k)] == '\n' && e[:len(k)] == k {
			return true
		}
	}
}

// Len is the number of entries.
func (b *Blocklist) Len() int {
	if b == nil {
		return 0
	}
	return b.n
}

// footprint is the memory the list keeps, in bytes.
func (b *Blocklist) footprint() int { return len(b.data) + 4*len(b.slots) }

// builder builds a Blocklist.
type builder struct {
	b    Blocklist
	data strings.Builder
}

// newBuilder sizes the table for up to n entries of size bytes in all.
func newBuilder(n, size int) *builder {
	slots := 1 << bits.Len(uint(max(2*n, 8)-1)) // a power of two, at least 2n
	bb := &builder{b: Blocklist{seed: maphash.MakeSeed(), slots: make([]uint32, slots)}}
	bb.data.Grow(size)
	return bb
}

// add folds w and adds it unless it is blank, has a line break or is there
// already. The table has room: newBuilder sized it for every word.
func (bb *builder) add(w string) {
	k := fold(w)
	if strings.IndexByte(k, '\n') >= 0 || strings.TrimFunc(k, unicode.IsSpace) == "" {
		return
	}
	data := bb.data.String() // the entries so far, without a copy
	mask := uint64(len(bb.b.slots) - 1)
	i := maphash.String(bb.b.seed, k) & mask
	for ; bb.b.slots[i] != 0; i = (i + 1) & mask {
		e := data[bb.b.slots[i]-1:]
		if len(e) > len(k) && e[len(k)] == '\n' && e[:len(k)] == k {
			return
		}
	}
	bb.b.slots[i] = uint32(len(data)) + 1
	bb.data.WriteString(k)
	bb.data.WriteByte('\n')
	bb.b.n++
}

func (bb *builder) finish() *Blocklist {
	b := bb.b
	b.data = bb.data.String()
	return &b
}

// gunzip decompresses a gzip file into a string sized from its trailer.
func gunzip(gz string) (string, error) {
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	if n := len(gz); n >= 4 {
		// The last four bytes are the decompressed size modulo 2^32: a hint.
		size := uint32(gz[n-4]) | uint32(gz[n-3])<<8 | uint32(gz[n-2])<<16 | uint32(gz[n-1])<<24
		sb.Grow(int(min(size, 64<<20)))
	}
	if _, err := io.Copy(&sb, zr); err != nil {
		return "", err
	}
	if err := zr.Close(); err != nil {
		return "", err
	}
	return sb.String(), nil
}
