package reload

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeSource counts loads and returns its value or its error.
type fakeSource struct {
	loads int
	v     int
	err   error
}

func (f *fakeSource) load(context.Context, int, bool) (int, error) {
	f.loads++
	return f.v, f.err
}

func TestReloadingReadsAtMostOncePerInterval(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	src := &fakeSource{v: 1}
	c := New(time.Second, func() time.Time { return now }, src.load)
	get := func(want int) {
		t.Helper()
		got, err := c.Get(t.Context())
		if err != nil || got != want {
			t.Fatalf("got %d, %v; want %d", got, err, want)
		}
	}
	get(1)
	src.v = 2
	now = now.Add(999 * time.Millisecond)
	get(1) // within the second: no read
	if src.loads != 1 {
		t.Fatalf("got %d reads within one second, want 1", src.loads)
	}
	now = now.Add(time.Millisecond)
	get(2) // a second later the change shows
	now = now.Add(-time.Hour)
	src.v = 3
	get(3) // a clock set back reads again rather than trusting an age it cannot know
	if src.loads != 3 {
		t.Fatalf("got %d reads, want 3", src.loads)
	}
}

func TestReloadingErrors(t *testing.T) {
	for _, keep := range []bool{false, true} {
		now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		src := &fakeSource{err: errors.New("database is locked")}
		c := New(time.Second, func() time.Time { return now }, src.load)
		c.KeepLastGood = keep
		if _, err := c.Get(t.Context()); err == nil {
			t.Fatalf("KeepLastGood %v: got no error before any good read", keep)
		}
		src.v, src.err = 7, nil
		if v, err := c.Get(t.Context()); err != nil || v != 7 {
			t.Fatalf("KeepLastGood %v: got %d, %v after the store recovered, want 7 (a failed read is not remembered)", keep, v, err)
		}
		now = now.Add(time.Second)
		src.err = errors.New("database is locked")
		v, err := c.Get(t.Context())
		switch {
		case keep && (err != nil || v != 7):
			t.Fatalf("KeepLastGood: got %d, %v, want the last good 7", v, err)
		case !keep && err == nil:
			t.Fatalf("got %d, no error, want the failed read's error", v)
		}
		// The failed read does not count as a read: the next call tries again.
		loads := src.loads
		src.err = nil
		src.v = 8
		if v, err := c.Get(t.Context()); err != nil || v != 8 || src.loads != loads+1 {
			t.Fatalf("KeepLastGood %v: got %d, %v after %d reads, want 8 read at once", keep, v, err, src.loads-loads)
		}
	}
}

func TestReloadingPassesTheLastValueToLoad(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var seen []int
	n := 0
	c := New(time.Second, func() time.Time { return now }, func(_ context.Context, last int, have bool) (int, error) {
		if have {
			seen = append(seen, last)
		}
		n++
		return n * 10, nil
	})
	for range 3 {
		if _, err := c.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if len(seen) != 2 || seen[0] != 10 || seen[1] != 20 {
		t.Fatalf("got last values %v, want [10 20]", seen)
	}
}
