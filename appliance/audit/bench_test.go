package audit_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend measures what an entry costs on disk when this many
// callers append at once: the process's CPU per entry, the group
// commit's fixed part (transaction, two flushes) shared by the group.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 3, 11, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			st, err := store.Open(context.Background(), dir, store.Options{Create: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			l, err := audit.New(st, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			e := audit.Entry{Kind: audit.KindDecision, Door: "radius", Client: "bench", User: "bench17",
				Source: "127.0.0.1", Outcome: "accept", Reason: "ok",
				Detail: `{"steps":[["client","known"],["password","verified by fr"]],"upstream":"fr"}`}
			ctx := context.Background()
			// warm up: the first entry creates the head file
			if _, err := l.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
			per := b.N/writers + 1
			b.ResetTimer()
			c0 := cpuNow()
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						if _, err := l.Append(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuNow()-c0).Microseconds())/float64(per*writers), "cpu-us/entry")
		})
	}
}
