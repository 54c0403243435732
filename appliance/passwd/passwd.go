// Package passwd hashes and verifies local passwords with argon2id, and
// bounds how many hashes run at once.
//
// Argon2id is memory-hard on purpose, which makes it the appliance's most
// expensive operation in both CPU and RAM. A Raspberry Pi with 1-4 GB must
// survive a flood of logins, so every hash takes a slot from a semaphore
// sized to the CPUs: a flood makes answers slower, never memory larger.
// Waiting hashes are served a source at a time (WithSource), so a flood
// from one NAS does not hold up another's logins.
package passwd

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/md4"
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultParams are one of OWASP's argon2id configurations (12 MiB, three
// passes, one lane). OWASP lists m=19 MiB/t=2, m=12 MiB/t=3 and m=9 MiB/t=4
// as giving an equal level of defence, trading memory for passes; on a
// Raspberry Pi memory is the scarcer resource, so clinicgate takes the
// 12 MiB row: with one hash per CPU a four-core Pi holds at most 48 MiB of
// hash memory, well inside a 150 MB budget for the whole daemon. One hash
// takes about 30 ms on a desktop core (see make bench).
var DefaultParams = Params{MemoryKiB: 12 * 1024, Time: 3, Threads: 1}

// Limits on parameters read back from the store, so a tampered hash cannot
// make one verification eat the machine.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 16
	saltLen      = 16
	keyLen       = 32
)

// ErrMalformed means a stored hash cannot be parsed.
var ErrMalformed = errors.New("passwd: stored hash is malformed")

// Hasher hashes and verifies passwords, at most Concurrency at a time.
type Hasher struct {
	params Params
	sem    *fairSem
	dummy  string
}

// NewHasher returns a Hasher. concurrency <= 0 means runtime.NumCPU().
func NewHasher(p Params, concurrency int) (*Hasher, error) {
	if p.MemoryKiB < 8 || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
		return nil, fmt.Errorf("passwd: argon2id parameters out of range: %+v", p)
	}
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	h := &Hasher{params: p, sem: newFairSem(concurrency)}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	h.dummy = encode(p, salt, argon2.IDKey([]byte("dummy"), salt, p.Time, p.MemoryKiB, p.Threads, keyLen))
	return h, nil
}

// Params returns the parameters new hashes get.
func (h *Hasher) Params() Params { return h.params }

func (h *Hasher) acquire(ctx context.Context) error { return h.sem.acquire(ctx) }

func (h *Hasher) release() { h.sem.release() }

// Hash returns the PHC-format argon2id hash of password with a new salt.
func (h *Hasher) Hash(ctx context.Context, password []byte) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passwd: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	p := h.params
	return encode(p, salt, argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)), nil
}

// Verify reports whether password matches the stored hash.
func (h *Hasher) Verify(ctx context.Context, stored string, password []byte) (bool, error) {
	p, salt, want, err := decode(stored)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Dummy spends the time of one verification and always fails. The gate
// calls it for unknown users so that timing does not reveal which accounts
// exist.
func (h *Hasher) Dummy(ctx context.Context, password []byte) error {
	_, err := h.Verify(ctx, h.dummy, password)
	return err
}

// NeedsRehash reports whether a stored hash uses other parameters than new
// hashes get.
func (h *Hasher) NeedsRehash(stored string) bool {
	p, _, _, err := decode(stored)
	return err != nil || p != h.params
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformed
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
		return Params{}, nil, nil, ErrMalformed
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

// NTHash is the NT hash of a password (MD4 of its UTF-16LE form), which
// MS-CHAPv2 needs to verify a response and derive MPPE keys. It is
// unsalted and fast: the store keeps it only for users who may log in with
// MS-CHAPv2 (see docs/mschap.md), never instead of the argon2id hash.
func NTHash(password []byte) [16]byte {
	u := utf16.Encode([]rune(string(password)))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	h := md4.New()
	h.Write(b)
	clear(b)
	var out [16]byte
	h.Sum(out[:0])
	return out
}
