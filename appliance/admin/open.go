package admin

import (
	"context"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Open opens the store in dir (never creating it: that is the daemon's
// first start), its audit log and a password hasher, and returns the
// service acting as actor, with the function that closes them. It is how
// a command-line admin command reaches the store.
func Open(ctx context.Context, dir, actor string) (*Service, func(), error) {
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	log, err := audit.New(st, nil)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	closeAll := func() { log.Close(); st.Close() }
	// One hash at a time: a command sets at most one password.
	h, err := passwd.NewHasher(passwd.DefaultParams, 1)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	svc, err := New(st, log, h, actor)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return svc, closeAll, nil
}

// Create makes a new, empty store in dir, as the daemon's first start
// does (for tests and for tools that prepare a data directory).
func Create(ctx context.Context, dir string) error {
	st, err := store.Open(ctx, dir, store.Options{Create: true})
	if err != nil {
		return err
	}
	return st.Close()
}
