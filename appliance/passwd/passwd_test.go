package passwd

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fast keeps argon2id cheap; the parameters travel with each hash, so the
// code paths are the production ones.
var fast = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newHasher(t *testing.T, p Params, concurrency int) *Hasher {
	t.Helper()
	h, err := NewHasher(p, concurrency)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewHasherParams(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		ok   bool
	}{
		{"fast", fast, true},
		{"default", DefaultParams, true},
		{"smallest", Params{MemoryKiB: 8, Time: 1, Threads: 1}, true},
		{"two threads", Params{MemoryKiB: 64, Time: 2, Threads: 2}, true},
		{"memory 7 KiB", Params{MemoryKiB: 7, Time: 1, Threads: 1}, false},
		{"memory above 256 MiB", Params{MemoryKiB: 256*1024 + 1, Time: 1, Threads: 1}, false},
		{"no passes", Params{MemoryKiB: 64, Time: 0, Threads: 1}, false},
		{"17 passes", Params{MemoryKiB: 64, Time: 17, Threads: 1}, false},
		{"no threads", Params{MemoryKiB: 64, Time: 1, Threads: 0}, false},
		{"zero", Params{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.p, 1)
			if (err == nil) != tt.ok {
				t.Fatalf("NewHasher(%+v): got error %v, want ok=%v", tt.p, err, tt.ok)
			}
			if err == nil && h.Params() != tt.p {
				t.Errorf("Params(): got %+v, want %+v", h.Params(), tt.p)
			}
		})
	}
}

func TestConcurrencyDefaultsToCPUs(t *testing.T) {
	tests := []struct {
		concurrency, want int
	}{
		{2, 2},
		{1, 1},
		{0, runtime.NumCPU()},
		{-3, runtime.NumCPU()},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.concurrency), func(t *testing.T) {
			if got := newHasher(t, fast, tt.concurrency).sem.size(); got != tt.want {
				t.Errorf("semaphore size: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := t.Context()
	h := newHasher(t, fast, 2)
	for _, pw := range []string{"correct horse battery staple", "", "ünïcödé pässwörd", strings.Repeat("x", 1000)} {
		t.Run(fmt.Sprintf("%.20q", pw), func(t *testing.T) {
			stored, err := h.Hash(ctx, []byte(pw))
			if err != nil {
				t.Fatal(err)
			}
			if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(stored, want) {
				t.Errorf("hash: got %q, want prefix %q", stored, want)
			}
			if pw != "" && strings.Contains(stored, pw) {
				t.Errorf("hash %q contains the password", stored)
			}
			ok, err := h.Verify(ctx, stored, []byte(pw))
			if err != nil || !ok {
				t.Errorf("Verify(right password): got (%v, %v), want (true, nil)", ok, err)
			}
			ok, err = h.Verify(ctx, stored, []byte(pw+"x"))
			if err != nil || ok {
				t.Errorf("Verify(wrong password): got (%v, %v), want (false, nil)", ok, err)
			}
		})
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	ctx := t.Context()
	h := newHasher(t, fast, 2)
	stored, err := h.Hash(ctx, []byte("Summer2026!"))
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"summer2026!", "Summer2026", "Summer2026!!", " Summer2026!", "", "Summer2026!\x00"} {
		if ok, err := h.Verify(ctx, stored, []byte(wrong)); ok || err != nil {
			t.Errorf("Verify(%q): got (%v, %v), want (false, nil)", wrong, ok, err)
		}
	}
}

func TestSaltsDiffer(t *testing.T) {
	ctx := t.Context()
	h := newHasher(t, fast, 2)
	a, err := h.Hash(ctx, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(ctx, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal: %s", a)
	}
}

// TestVerifyUsesStoredParams: a hash made under older parameters still
// verifies after the parameters change, and is flagged for rehashing.
func TestVerifyUsesStoredParams(t *testing.T) {
	ctx := t.Context()
	old := newHasher(t, Params{MemoryKiB: 32, Time: 2, Threads: 1}, 1)
	stored, err := old.Hash(ctx, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHasher(t, fast, 1)
	if ok, err := h.Verify(ctx, stored, []byte("pw")); !ok || err != nil {
		t.Errorf("Verify(old hash): got (%v, %v), want (true, nil)", ok, err)
	}
	if !h.NeedsRehash(stored) {
		t.Errorf("NeedsRehash(old hash): got false, want true")
	}
	if old.NeedsRehash(stored) {
		t.Errorf("NeedsRehash(own hash): got true, want false")
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newHasher(t, fast, 1)
	own, err := h.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	tests := []struct {
		name, stored string
		want         bool
	}{
		{"own", own, false},
		{"same params, other salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key, false},
		{"more memory", "$argon2id$v=19$m=128,t=1,p=1$" + salt + "$" + key, true},
		{"more passes", "$argon2id$v=19$m=64,t=2,p=1$" + salt + "$" + key, true},
		{"more threads", "$argon2id$v=19$m=64,t=1,p=2$" + salt + "$" + key, true},
		{"malformed", "$2b$10$abcdefghijklmnopqrstuv", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.NeedsRehash(tt.stored); got != tt.want {
				t.Errorf("NeedsRehash(%q): got %v, want %v", tt.stored, got, tt.want)
			}
		})
	}
}

// TestMalformedHashRefused: a damaged or hand-edited stored hash is an
// error, never a match, and never makes one verification eat the machine.
func TestMalformedHashRefused(t *testing.T) {
	h := newHasher(t, fast, 1)
	good, err := h.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct {
		name, stored string
	}{
		{"empty", ""},
		{"plain text", "pw"},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"ARGON2ID", with(1, "ARGON2ID")},
		{"text before", "x" + good},
		{"missing field", strings.Join(parts[:5], "$")},
		{"extra field", good + "$extra"},
		{"version 16", with(2, "v=16")},
		{"version missing", with(2, "v=")},
		{"version not a number", with(2, "v=nineteen")},
		{"absurd memory", with(3, "m=999999999,t=1,p=1")},
		{"memory above limit", with(3, "m=262145,t=1,p=1")},
		{"memory below 8", with(3, "m=7,t=1,p=1")},
		{"memory overflows uint32", with(3, "m=4294967360,t=1,p=1")},
		{"negative memory", with(3, "m=-64,t=1,p=1")},
		{"no passes", with(3, "m=64,t=0,p=1")},
		{"17 passes", with(3, "m=64,t=17,p=1")},
		{"absurd passes", with(3, "m=64,t=4294967295,p=1")},
		{"no threads", with(3, "m=64,t=1,p=0")},
		{"threads overflow uint8", with(3, "m=64,t=1,p=256")},
		{"params reordered", with(3, "t=1,m=64,p=1")},
		{"params missing", with(3, "m=64")},
		{"salt not base64", with(4, "!!!!notbase64!!!!")},
		{"salt padded", with(4, parts[4]+"==")},
		{"salt too short", with(4, "c2FsdA")},
		{"salt empty", with(4, "")},
		{"key not base64", with(5, "@@@@")},
		{"key too short", with(5, "a2V5a2V5a2V5a2V5a2V5")},
		{"key too long", with(5, strings.Repeat("QUFB", 22))},
		{"key empty", with(5, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(t.Context(), tt.stored, []byte("pw"))
			if ok || !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify(%q): got (%v, %v), want (false, ErrMalformed)", tt.stored, ok, err)
			}
		})
	}
}

func TestDummy(t *testing.T) {
	h := newHasher(t, fast, 1)
	for _, pw := range []string{"dummy", "anything", ""} {
		if err := h.Dummy(t.Context(), []byte(pw)); err != nil {
			t.Errorf("Dummy(%q): got %v, want nil", pw, err)
		}
	}
	if got := h.sem.held(); got != 0 {
		t.Errorf("slots held after Dummy: got %d, want 0", got)
	}
}

// fill takes every slot of h's semaphore, as a flood of logins would, and
// gives them back at the end of the test.
func fill(t *testing.T, h *Hasher) {
	t.Helper()
	for range h.sem.size() {
		if err := h.sem.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for h.sem.held() > 0 {
			h.sem.release()
		}
	})
}

// TestFloodWaitsForASlot: when every slot is busy, a hash waits instead of
// running, and gives up with the context's error when its deadline passes.
func TestFloodWaitsForASlot(t *testing.T) {
	h := newHasher(t, fast, 2)
	stored, err := h.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, h)
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Verify", func(ctx context.Context) error { _, err := h.Verify(ctx, stored, []byte("pw")); return err }},
		{"Hash", func(ctx context.Context) error { _, err := h.Hash(ctx, []byte("pw")); return err }},
		{"Dummy", func(ctx context.Context) error { return h.Dummy(ctx, []byte("pw")) }},
	}
	for _, c := range calls {
		t.Run(c.name+"/deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			if err := c.call(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s with every slot busy: got %v, want %v", c.name, err, context.DeadlineExceeded)
			}
		})
		t.Run(c.name+"/cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := c.call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with every slot busy: got %v, want %v", c.name, err, context.Canceled)
			}
		})
	}
	if got := h.sem.held(); got != 2 {
		t.Errorf("slots held after the calls gave up: got %d, want 2 (only the test's own)", got)
	}
}

// TestWaitingVerifyRunsWhenASlotFrees: a queued verification proceeds as
// soon as one slot is given back, and the result is still right.
func TestWaitingVerifyRunsWhenASlotFrees(t *testing.T) {
	h := newHasher(t, fast, 2)
	stored, err := h.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, h)
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ok, err := h.Verify(t.Context(), stored, []byte("pw"))
		done <- result{ok, err}
	}()
	h.sem.release() // free one slot
	r := <-done
	if !r.ok || r.err != nil {
		t.Errorf("Verify after a slot freed: got (%v, %v), want (true, nil)", r.ok, r.err)
	}
	if got := h.sem.held(); got != 1 {
		t.Errorf("slots held: got %d, want 1 (the test's remaining one)", got)
	}
}

// TestConcurrentVerifyReleasesSlots: many concurrent verifications, right
// and wrong, all answer correctly and every slot comes back.
func TestConcurrentVerifyReleasesSlots(t *testing.T) {
	h := newHasher(t, fast, 2)
	stored, err := h.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw, want := "pw", true
			if i%2 == 1 {
				pw, want = "wrong", false
			}
			ok, err := h.Verify(t.Context(), stored, []byte(pw))
			if ok != want || err != nil {
				errs <- fmt.Sprintf("Verify(%q): got (%v, %v), want (%v, nil)", pw, ok, err, want)
			}
			if i%4 == 0 {
				if _, err := h.Verify(t.Context(), "garbage", []byte(pw)); !errors.Is(err, ErrMalformed) {
					errs <- fmt.Sprintf("Verify(garbage): got %v, want ErrMalformed", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := h.sem.held(); got != 0 {
		t.Errorf("slots held after every call returned: got %d, want 0", got)
	}
}

// TestWaitingHashesTakeTurnsBySource: with every slot busy, one source's
// ten waiting hashes and another's one, the other source's goes next, not
// after the ten (issue 16 finding 8: one NAS's flood of logins).
func TestWaitingHashesTakeTurnsBySource(t *testing.T) {
	h := newHasher(t, fast, 1)
	fill(t, h)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	wait := func(src string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.sem.acquire(WithSource(context.Background(), src)); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, src)
			mu.Unlock()
			h.sem.release()
		}()
	}
	waiting := func(n int) {
		for {
			h.sem.mu.Lock()
			got := 0
			for _, q := range h.sem.waits {
				got += len(q)
			}
			h.sem.mu.Unlock()
			if got == n {
				return
			}
			runtime.Gosched()
		}
	}
	for i := range 10 {
		wait("flood")
		waiting(i + 1)
	}
	wait("ward")
	waiting(11)
	h.sem.release() // the slot the test held
	wg.Wait()
	if i := slices.Index(order, "ward"); i != 1 {
		t.Fatalf("got the other source's hash %d-th (order %v), want 2nd: right after the flood's first", i+1, order)
	}
}
