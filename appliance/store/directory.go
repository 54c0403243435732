package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// DirUser is a user as a cloud directory lists it. In a delta, fields the
// directory left out are unchanged: an empty Name, a nil DisplayName or
// Enabled.
type DirUser struct {
	ExtID       string // the directory's stable id
	Name        string // login name (userPrincipalName, Okta login)
	DisplayName *string
	Enabled     *bool
}

// DirGroup is a group and its members (directory user ids). An empty Name
// in a delta means unchanged. With Delta,
// Members are additions and MembersRemoved removals; otherwise Members is
// the whole membership.
type DirGroup struct {
	ExtID          string
	Name           string
	Members        []string
	MembersRemoved []string
	Delta          bool
}

// DirChanges is one sync run's result. Full means Users and Groups are the
// whole directory: users of this source not in it are disabled, groups not
// in it removed.
type DirChanges struct {
	Full          bool
	Users         []DirUser
	RemovedUsers  []string
	Groups        []DirGroup
	RemovedGroups []string
	State         string // the source's cursor for the next run (a delta link)
}

// DirStats says what a sync changed.
type DirStats struct {
	Created, Updated, Disabled int
	Users, Groups              int // totals for the source afterwards
	Conflicts                  []string
}

// DirSync is a source's sync record.
type DirSync struct {
	Upstream  string
	State     string
	LastRun   time.Time
	LastOK    time.Time
	LastError string
	Users     int
	Groups    int
}

// ApplyDirectory applies a sync run for upstream inside tx: users are
// created, renamed, enabled or disabled (never deleted: their audit history
// and enrolments stay), and every synced user's groups are set to its
// directory groups.
func (tx *Tx) ApplyDirectory(ctx context.Context, upstream string, c DirChanges, now time.Time) (DirStats, error) {
	var st DirStats
	up := strings.ToLower(upstream)
	seen := map[int64]bool{}
	touched := map[int64]bool{}
	for _, du := range c.Users {
		id, created, updated, conflict, err := tx.upsertDirUser(ctx, upstream, du, now)
		if err != nil {
			return st, err
		}
		if conflict != "" {
			st.Conflicts = append(st.Conflicts, conflict)
			continue
		}
		seen[id], touched[id] = true, true
		if created {
			st.Created++
		} else if updated {
			st.Updated++
		}
	}
	disable := func(id int64) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE users SET disabled = 1, version = version + 1, updated_at = ? WHERE id = ? AND disabled = 0`, now.Unix(), id)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			st.Disabled++
			// A user gone from the directory must not get in from the
			// credential cache either.
			if err := tx.DeleteCachedVerifiers(ctx, id, ""); err != nil {
				return err
			}
		}
		return nil
	}
	for _, ext := range c.RemovedUsers {
		var id int64
		err := tx.q.QueryRowContext(ctx, `SELECT id FROM users WHERE source = ? COLLATE NOCASE AND ext_id = ?`, upstream, ext).Scan(&id)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return st, mapErr(err)
		}
		if err := disable(id); err != nil {
			return st, err
		}
		touched[id] = true
	}
	if c.Full {
		rows, err := tx.q.QueryContext(ctx, `SELECT id FROM users WHERE source = ? COLLATE NOCASE AND ext_id != ''`, upstream)
		if err != nil {
			return st, mapErr(err)
		}
		var gone []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return st, mapErr(err)
			}
			if !seen[id] {
				gone = append(gone, id)
			}
		}
		rows.Close()
		for _, id := range gone {
			if err := disable(id); err != nil {
				return st, err
			}
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_members WHERE upstream = ?`, up); err != nil {
			return st, mapErr(err)
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_groups WHERE upstream = ?`, up); err != nil {
			return st, mapErr(err)
		}
	}
	for _, g := range c.Groups {
		// A delta may leave the name out: keep the known one (or, for a
		// group never seen with a name, use its id).
		name := g.Name
		if name == "" {
			name = g.ExtID
		}
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO dir_groups (upstream, ext_id, name) VALUES (?, ?, ?) ON CONFLICT (upstream, ext_id) DO UPDATE SET name = CASE WHEN ? = '' THEN name ELSE excluded.name END`, up, g.ExtID, name, g.Name); err != nil {
			return st, mapErr(err)
		}
		if !g.Delta {
			if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_members WHERE upstream = ? AND group_ext = ?`, up, g.ExtID); err != nil {
				return st, mapErr(err)
			}
		}
		for _, m := range g.Members {
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO dir_members (upstream, group_ext, user_ext) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, up, g.ExtID, m); err != nil {
				return st, mapErr(err)
			}
		}
		for _, m := range g.MembersRemoved {
			if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_members WHERE upstream = ? AND group_ext = ? AND user_ext = ?`, up, g.ExtID, m); err != nil {
				return st, mapErr(err)
			}
		}
	}
	for _, ext := range c.RemovedGroups {
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_members WHERE upstream = ? AND group_ext = ?`, up, ext); err != nil {
			return st, mapErr(err)
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM dir_groups WHERE upstream = ? AND ext_id = ?`, up, ext); err != nil {
			return st, mapErr(err)
		}
	}
	// Every synced user's groups are its directory groups.
	rows, err := tx.q.QueryContext(ctx, `SELECT u.id, u.ext_id FROM users u WHERE u.source = ? COLLATE NOCASE AND u.ext_id != ''`, upstream)
	if err != nil {
		return st, mapErr(err)
	}
	type su struct {
		id  int64
		ext string
	}
	var users []su
	for rows.Next() {
		var x su
		if err := rows.Scan(&x.id, &x.ext); err != nil {
			rows.Close()
			return st, mapErr(err)
		}
		users = append(users, x)
	}
	rows.Close()
	for _, x := range users {
		grows, err := tx.q.QueryContext(ctx, `SELECT g.name FROM dir_members m JOIN dir_groups g ON g.upstream = m.upstream AND g.ext_id = m.group_ext WHERE m.upstream = ? AND m.user_ext = ? ORDER BY g.name`, up, x.ext)
		if err != nil {
			return st, mapErr(err)
		}
		var names []string
		for grows.Next() {
			var n string
			if err := grows.Scan(&n); err != nil {
				grows.Close()
				return st, mapErr(err)
			}
			names = append(names, n)
		}
		grows.Close()
		sort.Strings(names)
		if err := tx.SetUserGroups(ctx, x.id, names); err != nil {
			return st, err
		}
	}
	st.Users = len(users)
	if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM dir_groups WHERE upstream = ?`, up).Scan(&st.Groups); err != nil {
		return st, mapErr(err)
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO dir_sync (upstream, state, last_run, last_ok, last_error, users, groups) VALUES (?, ?, ?, ?, '', ?, ?)
		ON CONFLICT (upstream) DO UPDATE SET state = excluded.state, last_run = excluded.last_run, last_ok = excluded.last_ok, last_error = '', users = excluded.users, groups = excluded.groups`,
		up, c.State, now.Unix(), now.Unix(), st.Users, st.Groups)
	return st, mapErr(err)
}

func (tx *Tx) upsertDirUser(ctx context.Context, upstream string, du DirUser, now time.Time) (id int64, created, updated bool, conflict string, err error) {
	var name, display, source, hash string
	var disabled bool
	err = tx.q.QueryRowContext(ctx, `SELECT id, name, display_name, source, password_hash, disabled FROM users WHERE source = ? COLLATE NOCASE AND ext_id = ?`, upstream, du.ExtID).
		Scan(&id, &name, &display, &source, &hash, &disabled)
	if err == sql.ErrNoRows && du.Name != "" {
		// Not synced before: maybe provisioned at a first login, by name.
		err = tx.q.QueryRowContext(ctx, `SELECT id, name, display_name, source, password_hash, disabled FROM users WHERE name = ?`, du.Name).
			Scan(&id, &name, &display, &source, &hash, &disabled)
		if err == nil && !strings.EqualFold(source, upstream) && hash != "" {
			return 0, false, false, fmt.Sprintf("%s: a local account with its own password has this name; not synced", du.Name), nil
		}
	}
	wantDisabled := func(cur bool) bool {
		if du.Enabled == nil {
			return cur
		}
		return !*du.Enabled
	}
	switch {
	case err == sql.ErrNoRows:
		if du.Name == "" {
			return 0, false, false, fmt.Sprintf("%s: a change for a user never seen in full; resync needed", du.ExtID), nil
		}
		d := ""
		if du.DisplayName != nil {
			d = *du.DisplayName
		}
		res, err := tx.q.ExecContext(ctx, `INSERT INTO users (name, display_name, disabled, source, ext_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			du.Name, d, wantDisabled(false), upstream, du.ExtID, now.Unix(), now.Unix())
		if err != nil {
			if e := mapErr(err); strings.Contains(e.Error(), ErrConflict.Error()) {
				return 0, false, false, fmt.Sprintf("%s: name already taken by another user; not synced", du.Name), nil
			}
			return 0, false, false, "", mapErr(err)
		}
		id, _ = res.LastInsertId()
		return id, true, false, "", nil
	case err != nil:
		return 0, false, false, "", mapErr(err)
	}
	newName, newDisplay, newDisabled := name, display, wantDisabled(disabled)
	if du.Name != "" {
		newName = du.Name
	}
	if du.DisplayName != nil {
		newDisplay = *du.DisplayName
	}
	if newName == name && newDisplay == display && newDisabled == disabled && strings.EqualFold(source, upstream) {
		_, err = tx.q.ExecContext(ctx, `UPDATE users SET ext_id = ? WHERE id = ? AND ext_id != ?`, du.ExtID, id, du.ExtID)
		return id, false, false, "", mapErr(err)
	}
	_, err = tx.q.ExecContext(ctx, `UPDATE users SET name = ?, display_name = ?, disabled = ?, source = ?, ext_id = ?, version = version + 1, updated_at = ? WHERE id = ?`,
		newName, newDisplay, newDisabled, upstream, du.ExtID, now.Unix(), id)
	if err != nil {
		if e := mapErr(err); strings.Contains(e.Error(), ErrConflict.Error()) {
			return 0, false, false, fmt.Sprintf("%s: renamed to a name another user has; not synced", du.Name), nil
		}
		return 0, false, false, "", mapErr(err)
	}
	if newDisabled && !disabled {
		if err := tx.DeleteCachedVerifiers(ctx, id, ""); err != nil {
			return 0, false, false, "", err
		}
	}
	return id, false, true, "", nil
}

// DirSyncRecord returns a source's sync record (zero value if never run).
func (s *Store) DirSyncRecord(ctx context.Context, upstream string) (DirSync, error) {
	d := DirSync{Upstream: upstream}
	var run, ok sql.NullInt64
	err := s.q.QueryRowContext(ctx, `SELECT state, last_run, last_ok, last_error, users, groups FROM dir_sync WHERE upstream = ?`, strings.ToLower(upstream)).
		Scan(&d.State, &run, &ok, &d.LastError, &d.Users, &d.Groups)
	if err == sql.ErrNoRows {
		return d, nil
	}
	if err != nil {
		return d, mapErr(err)
	}
	d.LastRun, d.LastOK = fromUnix(run), fromUnix(ok)
	return d, nil
}

// RecordDirSyncError notes a failed run (the cursor stays).
func (s *Store) RecordDirSyncError(ctx context.Context, upstream string, now time.Time, msg string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO dir_sync (upstream, last_run, last_error) VALUES (?, ?, ?)
			ON CONFLICT (upstream) DO UPDATE SET last_run = excluded.last_run, last_error = excluded.last_error`, strings.ToLower(upstream), now.Unix(), msg)
		return mapErr(err)
	})
}

// SetUpstreamSyncSecret seals and stores the credential for directory
// sync (an Okta API token); nil clears it.
func (tx *Tx) SetUpstreamSyncSecret(ctx context.Context, name string, secret []byte) error {
	var sealed []byte
	if len(secret) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(secret, "upstream-sync-secret:"+strings.ToLower(name)); err != nil {
			return err
		}
	}
	res, err := tx.q.ExecContext(ctx, `UPDATE upstreams SET sync_secret = ?, version = version + 1 WHERE name = ?`, sealed, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UpstreamSyncSecret returns the sync credential (nil if none).
func (s *Store) UpstreamSyncSecret(ctx context.Context, name string) ([]byte, error) {
	var sealed []byte
	if err := s.q.QueryRowContext(ctx, `SELECT sync_secret FROM upstreams WHERE name = ?`, name).Scan(&sealed); err != nil {
		return nil, mapErr(err)
	}
	if len(sealed) == 0 {
		return nil, nil
	}
	return s.sealer.Open(sealed, "upstream-sync-secret:"+strings.ToLower(name))
}
