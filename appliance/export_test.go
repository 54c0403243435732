package appliance

// QueuedCacheJobs reports how many verified passwords wait for the cache
// worker, so a test can tell when the worker holds one.
func QueuedCacheJobs(g *Gate) int { return len(g.cache.jobs) }
