package upstream

import (
	"fmt"
	"testing"
	"time"
)

func TestLookupCacheIsBoundedAndExpires(t *testing.T) {
	c := newLookupCache(time.Minute, 3)
	now := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		c.put(fmt.Sprint("u", i), userEntry{dn: fmt.Sprint("uid=u", i)}, now)
	}
	if len(c.items) != 3 {
		t.Fatalf("got %d entries, want at most 3", len(c.items))
	}
	if _, ok := c.get("u0", now); ok {
		t.Fatal("the oldest entry was kept past the bound")
	}
	if e, ok := c.get("u4", now); !ok || e.dn != "uid=u4" {
		t.Fatalf("got %+v %v, want the newest entry", e, ok)
	}
	if _, ok := c.get("u4", now.Add(time.Minute)); ok {
		t.Fatal("an entry outlived its TTL")
	}
	c.drop("u3")
	if _, ok := c.get("u3", now); ok {
		t.Fatal("a dropped entry (after a failed bind) is still used")
	}
	var off *lookupCache
	off.put("x", userEntry{}, now)
	if _, ok := off.get("x", now); ok {
		t.Fatal("a disabled cache returned an entry")
	}
}
