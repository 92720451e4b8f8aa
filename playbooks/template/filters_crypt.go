package template

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// password_hash(hashtype='sha512', salt=None, rounds=None): crypt(3)
// hashes as Ansible's filter makes them: sha512/sha256 (SHA-crypt, 5000
// rounds by default; with a salt the hash is the same every run, which keeps
// user modules idempotent) and bcrypt (blowfish; random salt).
func init() {
	filterTable["password_hash"] = fPasswordHash
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func fPasswordHash(p ...any) (any, error) {
	pw := String(p[0])
	kind, salt, rounds := "sha512", "", 0
	if len(p) > 1 && p[1] != nil {
		kind = String(p[1])
	}
	if len(p) > 2 && p[2] != nil {
		salt = String(p[2])
	}
	if len(p) > 3 && p[3] != nil {
		fmt.Sscan(String(p[3]), &rounds)
	}
	switch kind {
	case "sha512", "sha512_crypt":
		return shaCrypt(sha512.New, "$6$", pw, saltOr(salt, 16), rounds), nil
	case "sha256", "sha256_crypt":
		return shaCrypt(sha256.New, "$5$", pw, saltOr(salt, 16), rounds), nil
	case "bcrypt", "blowfish":
		cost := bcrypt.DefaultCost
		if rounds > 0 {
			cost = rounds
		}
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		return string(h), err
	}
	return nil, fmt.Errorf("password_hash: unsupported hash type %q (sha512, sha256, bcrypt)", kind)
}

func saltOr(salt string, n int) string {
	if salt != "" {
		return salt
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = cryptAlphabet[int(b[i])%len(cryptAlphabet)]
	}
	return string(b)
}

// shaCrypt is Ulrich Drepper's SHA-crypt ($5$, $6$).
func shaCrypt(newHash func() hash.Hash, prefix, password, salt string, rounds int) string {
	custom := rounds > 0
	if !custom {
		rounds = 5000
	}
	rounds = min(max(rounds, 1000), 999999999)
	if len(salt) > 16 {
		salt = salt[:16]
	}
	key, s := []byte(password), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	b := sum(key, s, key)
	size := len(b)
	ha := newHash()
	ha.Write(key)
	ha.Write(s)
	ha.Write(repeat(b, len(key)))
	for n := len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(key)
		}
	}
	a := ha.Sum(nil)
	hp := newHash()
	for range key {
		hp.Write(key)
	}
	pBytes := repeat(hp.Sum(nil), len(key))
	hs := newHash()
	for i := 0; i < 16+int(a[0]); i++ {
		hs.Write(s)
	}
	sBytes := repeat(hs.Sum(nil), len(s))
	c := a
	for i := 0; i < rounds; i++ {
		h := newHash()
		if i&1 != 0 {
			h.Write(pBytes)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(pBytes)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pBytes)
		}
		c = h.Sum(nil)
	}
	var out strings.Builder
	out.WriteString(prefix)
	if custom {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	for _, g := range cryptOrder(size) {
		w := uint(c[g[0]])<<16 | uint(c[g[1]])<<8 | uint(c[g[2]])
		n := 4
		if g[0] == g[1] { // the last group: one or two bytes
			n = g[3]
			w = uint(c[g[2]])
			if n == 3 {
				w = uint(c[g[0]])<<8 | uint(c[g[2]])
			}
		}
		for j := 0; j < n; j++ {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	return out.String()
}

func repeat(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}

// cryptOrder is SHA-crypt's byte order for the output: groups of three
// bytes; the last group (marked by equal first indexes) has fewer.
func cryptOrder(size int) [][4]int {
	if size == 32 {
		return [][4]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5},
			{6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}, {31, 31, 30, 3}}
	}
	return [][4]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26},
		{6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54},
		{34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60},
		{40, 61, 19}, {62, 20, 41}, {63, 63, 63, 2}}
}
