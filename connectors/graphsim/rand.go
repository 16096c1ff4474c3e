package graphsim

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"math/bits"
	"regexp"
	"strings"
)

// prng is a splitmix64 generator. Its output is defined here, not by the
// standard library, so a seed generates the same tenant with every Go
// release.
type prng struct{ s uint64 }

// newPRNG derives an independent stream from seed and a stream name, so
// (for example) adding groups does not change the generated users.
func newPRNG(seed int64, stream string) *prng {
	h := fnv.New64a()
	h.Write([]byte(stream))
	p := &prng{s: uint64(seed) ^ h.Sum64()}
	p.next()
	return p
}

func (p *prng) next() uint64 {
	p.s += 0x9e3779b97f4a7c15
	z := p.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n); n must be > 0.
func (p *prng) intn(n int) int {
	hi, _ := bits.Mul64(p.next(), uint64(n))
	return int(hi)
}

// between returns a number in [lo, hi].
func (p *prng) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + p.intn(hi-lo+1)
}

// chance is true with probability prob.
func (p *prng) chance(prob float64) bool {
	return float64(p.next()>>11)/(1<<53) < prob
}

// pick returns a random element of list.
func pick[T any](p *prng, list []T) T { return list[p.intn(len(list))] }

// guid returns a version-4-shaped lowercase GUID.
func (p *prng) guid() string {
	var b [16]byte
	x, y := p.next(), p.next()
	for i := 0; i < 8; i++ {
		b[i] = byte(x >> (8 * i))
		b[8+i] = byte(y >> (8 * i))
	}
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// randomGUID returns a fresh random GUID (request IDs, trace IDs).
func randomGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatGUID(b)
}

// hash64 is a stable hash for deriving per-object details (creation dates,
// phone numbers) from an object ID without storing them.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// isGUID reports whether s is a GUID in the 8-4-4-4-12 form.
func isGUID(s string) bool { return len(s) == 36 && guidRE.MatchString(s) }

// sampleDistinct returns k distinct numbers in [0, n) in random order
// (Floyd's algorithm: O(k) time and memory whatever n is).
func sampleDistinct(p *prng, n, k int) []int {
	if k > n {
		k = n
	}
	if k <= 0 {
		return nil
	}
	if k > n/2 {
		perm := make([]int, n)
		for i := range perm {
			perm[i] = i
		}
		for i := 0; i < k; i++ {
			j := i + p.intn(n-i)
			perm[i], perm[j] = perm[j], perm[i]
		}
		return perm[:k]
	}
	seen := make(map[int]struct{}, k)
	out := make([]int, 0, k)
	for j := n - k; j < n; j++ {
		t := p.intn(j + 1)
		if _, dup := seen[t]; dup {
			t = j
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	// Floyd's output is biased towards ascending order; shuffle it.
	for i := len(out) - 1; i > 0; i-- {
		j := p.intn(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// asciiFold replaces accented Latin letters with their ASCII base letters
// and drops every other non-ASCII rune.
func asciiFold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		if rep, ok := foldTable[r]; ok {
			b.WriteString(rep)
		}
	}
	return b.String()
}

// foldTable covers Latin-1, Latin Extended-A and the Vietnamese letters the
// name lists use.
var foldTable = func() map[rune]string {
	m := map[rune]string{
		'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe", 'Ø': "O", 'ø': "o",
		'Ł': "L", 'ł': "l", 'Đ': "D", 'đ': "d", 'Ð': "D", 'ð': "d", 'Þ': "Th", 'þ': "th",
		'ı': "i", 'İ': "I",
	}
	groups := map[string]string{
		"A": "ÀÁÂÃÄÅĀĂĄẠẢẤẦẨẪẬẮẰẲẴẶ",
		"a": "àáâãäåāăąạảấầẩẫậắằẳẵặ",
		"C": "ÇĆĈĊČ", "c": "çćĉċč",
		"D": "Ď", "d": "ď",
		"E": "ÈÉÊËĒĔĖĘĚẸẺẼẾỀỂỄỆ", "e": "èéêëēĕėęěẹẻẽếềểễệ",
		"G": "ĜĞĠĢ", "g": "ĝğġģ",
		"H": "ĤĦ", "h": "ĥħ",
		"I": "ÌÍÎÏĨĪĬĮỈỊ", "i": "ìíîïĩīĭįỉị",
		"J": "Ĵ", "j": "ĵ",
		"K": "Ķ", "k": "ķ",
		"L": "ĹĻĽĿ", "l": "ĺļľŀ",
		"N": "ÑŃŅŇ", "n": "ñńņň",
		"O": "ÒÓÔÕÖŌŎŐƠỌỎỐỒỔỖỘỚỜỞỠỢ", "o": "òóôõöōŏőơọỏốồổỗộớờởỡợ",
		"R": "ŔŖŘ", "r": "ŕŗř",
		"S": "ŚŜŞŠȘ", "s": "śŝşšș",
		"T": "ŢŤŦȚ", "t": "ţťŧț",
		"U": "ÙÚÛÜŨŪŬŮŰŲƯỤỦỨỪỬỮỰ", "u": "ùúûüũūŭůűųưụủứừửữự",
		"W": "Ŵ", "w": "ŵ",
		"Y": "ÝŶŸỲỴỶỸ", "y": "ýÿŷỳỵỷỹ",
		"Z": "ŹŻŽ", "z": "źżž",
	}
	for base, letters := range groups {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()
