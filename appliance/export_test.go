package appliance

// QueuedCacheJobs reports how many verified passwords wait for the cache
// worker, so a test can tell when the worker holds one.
func QueuedCacheJobs(g *Gate) int { return len(g.cache.jobs) }

// RepeatEntries reports how many repeat-login verifiers the gate holds.
func RepeatEntries(g *Gate) int { return g.repeat.len() }
