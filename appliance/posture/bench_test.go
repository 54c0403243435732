package posture_test

import (
	"testing"
	"time"
)

// BenchmarkSyncIntune10k: one full sync of 10,000 Intune devices (pages
// of 1,000) against the Graph stand-in, in process: the sync's own time
// and allocations, without the daemon's polling. The first sync adds the
// records; each one measured here updates them all.
func BenchmarkSyncIntune10k(b *testing.B) {
	e := newEnv(b)
	g := newGraph(b, intuneFleet(10000))
	g.PageSize = 1000
	c := e.source(b, "intune", intuneSettings(g), secret)
	if _, err := e.s.Sync(b.Context(), "intune", c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := e.s.Sync(b.Context(), "intune", c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/sync")
}
