package hostcfg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// Applier is the root helper's side: `clinicgate system apply`.
type Applier struct {
	Data string // the data directory holding the queue
	Root string // "/" on an appliance; a scratch directory in tests
	// Run runs one fixed command (exec outside tests).
	Run func(argv []string) error
	// Hostname is this host's name now (os.Hostname outside tests).
	Hostname string
	Now      func() time.Time
	// Output runs a fixed query command and returns its output (an
	// update's dpkg-deb and dpkg-query); Health waits for the daemon to
	// answer its health check (an update's). Without them updates are
	// refused.
	Output func(argv []string) (string, error)
	Health func(ctx context.Context) error
	// USB lists the removable partitions (nil: RemovablePartitions in
	// sysfs under Root).
	USB func() ([]string, error)
}

// ApplyAll acts on every queued request, oldest first, removing each and
// leaving its result. A request that does not check is refused, with
// nothing changed.
func (a *Applier) ApplyAll() ([]Result, error) {
	paths, err := Pending(a.Data)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, p := range paths {
		res := a.apply(p)
		_ = os.Remove(p)
		if res.ID != "" {
			if err := a.writeResult(res); err != nil {
				return out, err
			}
		}
		out = append(out, res)
	}
	return out, nil
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Applier) apply(path string) Result {
	r, err := ReadRequest(path)
	res := Result{ID: r.ID, At: a.now()}
	if err != nil {
		res.Message = err.Error()
		if res.ID == "" {
			res.ID = strings.TrimSuffix(filepath.Base(path), ".json")
			if len(res.ID) != 16 || strings.Trim(res.ID, "0123456789abcdef") != "" {
				res.ID = "" // not even a name to answer to
			}
		}
		return res
	}
	if err := r.Check(a.Hostname); err != nil {
		res.Message = err.Error()
		return res
	}
	hosts, _ := os.ReadFile(filepath.Join(a.Root, HostsFile))
	plan := PlanFor(r, string(hosts))
	if plan.USB {
		msg, err := a.usbCopy(r)
		if err != nil {
			res.Message = err.Error()
			return res
		}
		res.OK, res.Message = true, msg
		return res
	}
	if plan.Update {
		msg, err := a.update(r)
		if err != nil {
			res.Message = err.Error()
			return res
		}
		res.OK, res.Message = true, msg
		return res
	}
	if plan.Erase {
		if err := a.factoryReset(plan); err != nil {
			res.Message = err.Error()
			return res
		}
		// No result: the directory it would go in is gone, on purpose.
		return Result{}
	}
	for _, f := range plan.Files {
		dst := filepath.Join(a.Root, f.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			res.Message = err.Error()
			return res
		}
		if err := atomicfile.Write(dst, []byte(f.Content), 0o644); err != nil {
			res.Message = err.Error()
			return res
		}
	}
	for _, c := range plan.Commands {
		if err := a.Run(c); err != nil {
			res.Message = fmt.Sprintf("%s: written, but %s failed: %v", plan.Summary, strings.Join(c, " "), err)
			return res
		}
	}
	res.OK, res.Message = true, plan.Summary
	return res
}

// factoryReset stops the daemon, empties the data directory, removes the
// files this package wrote, and reboots.
func (a *Applier) factoryReset(plan Plan) error {
	if err := a.Run(plan.Commands[0]); err != nil {
		return fmt.Errorf("stopping clinicgate: %w", err)
	}
	es, err := os.ReadDir(a.Data)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range es {
		errs = append(errs, os.RemoveAll(filepath.Join(a.Data, e.Name())))
	}
	for _, f := range []string{NetworkFile, NTPFile} {
		if err := os.Remove(filepath.Join(a.Root, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("erasing: %w", err)
	}
	return a.Run(plan.Commands[1])
}

// writeResult leaves the result where the console (the data directory's
// owner, not root) can read it. The console polls for ID.json, so the
// file is written under another name, given to the owner, and only then
// renamed: a result that appeared root's for an instant was read as
// "permission denied", and the console reported the change as failed.
func (a *Applier) writeResult(r Result) error {
	if err := writeResultAs(a.Data, r.ID+".json.part", r); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // a factory reset took the directory
		}
		return err
	}
	part, final := filepath.Join(resultsDir(a.Data), r.ID+".json.part"), filepath.Join(resultsDir(a.Data), r.ID+".json")
	if err := a.ownLikeData(resultsDir(a.Data), part); err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, final)
}

// ownLikeData gives paths to the data directory's owner (the console's
// user), when the helper runs as root.
func (a *Applier) ownLikeData(paths ...string) error {
	st, err := os.Stat(a.Data)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	return nil
}
