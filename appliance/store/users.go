package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// User is a local account.
type User struct {
	ID           int64
	Name         string
	DisplayName  string
	PasswordHash string // PHC-format argon2id; empty means no local password
	Disabled     bool
	ExpiresAt    time.Time // zero: never
	Hours        string    // allowed hours, policy.ParseHours syntax; empty: always
	Groups       []string  // in the order given
	Failures     int
	LockedUntil  time.Time
	Version      int64
	// Source is "local", or the upstream that provisioned the user on its
	// first login there.
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const userCols = `id, name, display_name, password_hash, disabled, expires_at, allowed_hours, failures, locked_until, version, source, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var exp, locked sql.NullInt64
	var created, updated int64
	err := sc.Scan(&u.ID, &u.Name, &u.DisplayName, &u.PasswordHash, &u.Disabled, &exp, &u.Hours, &u.Failures, &locked, &u.Version, &u.Source, &created, &updated)
	if err != nil {
		return User{}, mapErr(err)
	}
	u.ExpiresAt, u.LockedUntil = fromUnix(exp), fromUnix(locked)
	u.CreatedAt, u.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return u, nil
}

func userGroups(ctx context.Context, q querier, id int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = ? ORDER BY ug.position, g.name`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, g)
	}
	return out, mapErr(rows.Err())
}

// userBy reads a user and its groups in one statement (the login path
// reads a user on every request).
func userBy(ctx context.Context, q querier, where string, arg any) (User, error) {
	var groups sql.NullString
	var u User
	var exp, locked sql.NullInt64
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT `+userCols+`, (SELECT group_concat(name, char(10)) FROM (SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = users.id ORDER BY ug.position, g.name)) FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.Name, &u.DisplayName, &u.PasswordHash, &u.Disabled, &exp, &u.Hours, &u.Failures, &locked, &u.Version, &u.Source, &created, &updated, &groups)
	if err != nil {
		return User{}, mapErr(err)
	}
	u.ExpiresAt, u.LockedUntil = fromUnix(exp), fromUnix(locked)
	u.CreatedAt, u.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	if groups.Valid && groups.String != "" {
		u.Groups = strings.Split(groups.String, "\n")
	}
	return u, nil
}

// UserByName finds a user by name, ignoring case.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	return userBy(ctx, s.q, `name = ?`, name)
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return userBy(ctx, s.q, `id = ?`, id)
}

// UserByName finds a user inside the transaction.
func (tx *Tx) UserByName(ctx context.Context, name string) (User, error) {
	return userBy(ctx, tx.q, `name = ?`, name)
}

// Users lists all users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	for i := range out {
		if out[i].Groups, err = userGroups(ctx, s.q, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CreateUser inserts u (and its groups, creating missing ones) and returns
// its id.
func (tx *Tx) CreateUser(ctx context.Context, u User, now time.Time) (int64, error) {
	if u.Source == "" {
		u.Source = "local"
	}
	res, err := tx.q.ExecContext(ctx, `INSERT INTO users (name, display_name, password_hash, disabled, expires_at, allowed_hours, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.DisplayName, u.PasswordHash, u.Disabled, unixOrNull(u.ExpiresAt), u.Hours, u.Source, now.Unix(), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("user %q: %w", u.Name, mapErr(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, mapErr(err)
	}
	return id, tx.SetUserGroups(ctx, id, u.Groups)
}

// UpdateUser writes every field of u except its groups and lockout
// counters. It fails with ErrConflict when the row's version is no longer
// u.Version (someone else changed it since u was read).
func (tx *Tx) UpdateUser(ctx context.Context, u User, now time.Time) error {
	res, err := tx.q.ExecContext(ctx, `UPDATE users SET display_name = ?, password_hash = ?, disabled = ?, expires_at = ?, allowed_hours = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
		u.DisplayName, u.PasswordHash, u.Disabled, unixOrNull(u.ExpiresAt), u.Hours, now.Unix(), u.ID, u.Version)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := userBy(ctx, tx.q, `id = ?`, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("user %q: %w", u.Name, ErrConflict)
	}
	return nil
}

// SetUserGroups replaces a user's groups, creating missing groups.
func (tx *Tx) SetUserGroups(ctx context.Context, userID int64, groups []string) error {
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM user_groups WHERE user_id = ?`, userID); err != nil {
		return mapErr(err)
	}
	for i, g := range groups {
		g = strings.TrimSpace(g)
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO groups (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, g); err != nil {
			return mapErr(err)
		}
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO user_groups (user_id, group_id, position) SELECT ?, id, ? FROM groups WHERE name = ? ON CONFLICT DO NOTHING`, userID, i, g); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// DeleteUser removes a user with its enrolments and devices.
func (tx *Tx) DeleteUser(ctx context.Context, id int64) error {
	// A MAC address bound by hand is bound to this user and goes with
	// them; an MDM's record only loses its owner (ON DELETE SET NULL).
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM inventory WHERE source = 'manual' AND owner_id = ?`, id); err != nil {
		return mapErr(err)
	}
	res, err := tx.q.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Groups lists every group name.
func (s *Store) Groups(ctx context.Context) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name FROM groups ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, g)
	}
	return out, mapErr(rows.Err())
}

// Lockout is the result of recording a failure.
type Lockout struct {
	Failures    int
	LockedUntil time.Time // zero unless this failure locked the account
}

// RecordFailure counts a failed login for the user and locks the account
// for lockFor once threshold consecutive failures are reached. A lock that
// has run out starts the count again.
func (tx *Tx) RecordFailure(ctx context.Context, userID int64, now time.Time, threshold int, lockFor time.Duration) (Lockout, error) {
	var failures int
	var locked sql.NullInt64
	if err := tx.q.QueryRowContext(ctx, `SELECT failures, locked_until FROM users WHERE id = ?`, userID).Scan(&failures, &locked); err != nil {
		return Lockout{}, mapErr(err)
	}
	if locked.Valid && locked.Int64 <= now.Unix() {
		failures, locked = 0, sql.NullInt64{}
	}
	failures++
	var out Lockout
	out.Failures = failures
	if threshold > 0 && failures >= threshold && !locked.Valid {
		out.LockedUntil = now.Add(lockFor).UTC().Truncate(time.Second)
		locked = sql.NullInt64{Int64: out.LockedUntil.Unix(), Valid: true}
	}
	_, err := tx.q.ExecContext(ctx, `UPDATE users SET failures = ?, locked_until = ? WHERE id = ?`, failures, locked, userID)
	return out, mapErr(err)
}

// ResetFailures clears the failure count and any lock.
func (tx *Tx) ResetFailures(ctx context.Context, userID int64) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE users SET failures = 0, locked_until = NULL WHERE id = ? AND (failures != 0 OR locked_until IS NOT NULL)`, userID)
	return mapErr(err)
}

// UsersVersion is a value that changes whenever a user or a group
// membership changes (in this process or another), so a cache of the
// directory can tell when to rebuild.
func (s *Store) UsersVersion(ctx context.Context) (string, error) {
	var n, sum, last, gn, gsum int64
	err := s.q.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM users), (SELECT COALESCE(SUM(version * 31 + id), 0) FROM users), (SELECT COALESCE(MAX(updated_at), 0) FROM users),
		(SELECT COUNT(*) FROM user_groups), (SELECT COALESCE(SUM(user_id * 7919 + group_id), 0) FROM user_groups)`).Scan(&n, &sum, &last, &gn, &gsum)
	if err != nil {
		return "", mapErr(err)
	}
	return fmt.Sprintf("%d/%d/%d/%d/%d", n, sum, last, gn, gsum), nil
}
