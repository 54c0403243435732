package appliance

import (
	"strconv"
	"testing"
	"time"
)

// TestThrottleTableBounded: a flood of wrong secrets from many addresses
// costs at most maxThrottled entries, and the blocked ones are kept.
func TestThrottleTableBounded(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1e9, 0)
	for range bindFailLimit {
		th.fail("victim", now)
	}
	for i := range 3 * maxThrottled {
		th.fail("src"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(th.m); n > maxThrottled {
		t.Fatalf("%d entries, want at most %d", n, maxThrottled)
	}
	if _, blocked := th.blocked("victim", now.Add(time.Minute)); !blocked {
		t.Fatal("a blocked source was evicted by the flood")
	}
}
