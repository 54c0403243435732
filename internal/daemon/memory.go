package daemon

import "runtime/debug"

// releaseStartupMemory hands back to the system what starting took and no
// longer needs (issue 15 goal 5: idle RSS). The largest part is the
// argon2id work area of the hasher's calibration hash (12 MiB), garbage
// from then on, which the collector would not get to until the heap had
// grown to twice its size, so the appliance sat idle with it resident.
// Once, after the listeners are open: it costs one collection.
func releaseStartupMemory() { debug.FreeOSMemory() }
