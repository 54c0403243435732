package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
)

// AcctStatus is an accounting session's state.
type AcctStatus string

const (
	AcctActive  AcctStatus = "active"
	AcctStopped AcctStatus = "stopped"
)

// AcctSession is one accounting session as a NAS reported it.
type AcctSession struct {
	Client         string
	SessionID      string
	UserName       string
	CallingStation string
	NASAddress     string
	FramedAddress  string
	Status         AcctStatus
	StartedAt      time.Time
	UpdatedAt      time.Time
	StoppedAt      time.Time
	SessionTime    int64
	InputOctets    int64
	OutputOctets   int64
	TerminateCause string
	// NASIdentifier and NASIPAttr are the NAS-Identifier and NAS-IP-Address
	// (or NAS-IPv6-Address) attributes as the NAS sent them ("" when
	// absent; NASAddress falls back to the packet's source): an RFC 5176
	// request repeats them so the NAS recognises itself.
	NASIdentifier string
	NASIPAttr     string
}

// UpsertAcct records a Start, Interim-Update or Stop. A Stop or interim for
// a session whose Start was lost creates the row, as NASes do lose packets.
func (s *Store) UpsertAcct(ctx context.Context, a AcctSession) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO acct_sessions (client, session_id, user_name, calling_station, nas_address, framed_address, status, started_at, updated_at, stopped_at, session_time, input_octets, output_octets, terminate_cause, nas_identifier, nas_ip_attr, station_mac)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client, session_id) DO UPDATE SET
				user_name = CASE WHEN excluded.user_name != '' THEN excluded.user_name ELSE user_name END,
				calling_station = CASE WHEN excluded.calling_station != '' THEN excluded.calling_station ELSE calling_station END,
				station_mac = CASE WHEN excluded.calling_station != '' THEN excluded.station_mac ELSE station_mac END,
				nas_identifier = CASE WHEN excluded.nas_identifier != '' THEN excluded.nas_identifier ELSE nas_identifier END,
				nas_ip_attr = CASE WHEN excluded.nas_ip_attr != '' THEN excluded.nas_ip_attr ELSE nas_ip_attr END,
				framed_address = CASE WHEN excluded.framed_address != '' THEN excluded.framed_address ELSE framed_address END,
				status = CASE WHEN status = 'stopped' THEN status ELSE excluded.status END,
				updated_at = excluded.updated_at,
				stopped_at = COALESCE(stopped_at, excluded.stopped_at),
				session_time = MAX(session_time, excluded.session_time),
				input_octets = MAX(input_octets, excluded.input_octets),
				output_octets = MAX(output_octets, excluded.output_octets),
				terminate_cause = CASE WHEN excluded.terminate_cause != '' THEN excluded.terminate_cause ELSE terminate_cause END`,
			a.Client, a.SessionID, a.UserName, a.CallingStation, a.NASAddress, a.FramedAddress, a.Status,
			a.StartedAt.Unix(), a.UpdatedAt.Unix(), unixOrNull(a.StoppedAt), a.SessionTime, a.InputOctets, a.OutputOctets, a.TerminateCause,
			a.NASIdentifier, a.NASIPAttr, stationMAC(a.CallingStation))
		return mapErr(err)
	})
}

// StopAllAcct marks every active session of a client stopped (Accounting-On
// or -Off: the NAS rebooted and its sessions are gone).
func (s *Store) StopAllAcct(ctx context.Context, client string, at time.Time, cause string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE acct_sessions SET status = 'stopped', stopped_at = ?, updated_at = ?, terminate_cause = ? WHERE client = ? AND status = 'active'`,
			at.Unix(), at.Unix(), cause, client)
		return mapErr(err)
	})
}

// AcctSessions lists sessions, newest first, at most limit.
func (s *Store) AcctSessions(ctx context.Context, activeOnly bool, limit int) ([]AcctSession, error) {
	return s.acctWhere(ctx, `? = 0 OR status = 'active'`, activeOnly, limit)
}

// ActiveSessionsByAddress lists the active sessions whose NAS reported the
// address as Framed-IP-Address, newest first: the Wi-Fi or VPN session
// that holds an address an LDAP bind comes from.
func (s *Store) ActiveSessionsByAddress(ctx context.Context, addr string) ([]AcctSession, error) {
	return s.acctWhere(ctx, `status = 'active' AND framed_address = ?`, addr, 8)
}

const acctColumns = `client, session_id, user_name, calling_station, nas_address, framed_address, status, started_at, updated_at, stopped_at, session_time, input_octets, output_octets, terminate_cause, nas_identifier, nas_ip_attr`

// acctWhere lists sessions matching cond, newest first; its last argument
// is the limit.
func (s *Store) acctWhere(ctx context.Context, cond string, args ...any) ([]AcctSession, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+acctColumns+` FROM acct_sessions WHERE `+cond+` ORDER BY updated_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []AcctSession
	for rows.Next() {
		var a AcctSession
		var started, updated int64
		var stopped sql.NullInt64
		if err := rows.Scan(&a.Client, &a.SessionID, &a.UserName, &a.CallingStation, &a.NASAddress, &a.FramedAddress, &a.Status, &started, &updated, &stopped, &a.SessionTime, &a.InputOctets, &a.OutputOctets, &a.TerminateCause, &a.NASIdentifier, &a.NASIPAttr); err != nil {
			return nil, mapErr(err)
		}
		a.StartedAt, a.UpdatedAt, a.StoppedAt = time.Unix(started, 0).UTC(), time.Unix(updated, 0).UTC(), fromUnix(stopped)
		out = append(out, a)
	}
	return out, mapErr(rows.Err())
}

// stationMAC is a Calling-Station-Id in canonical MAC form, or "-" when
// it is not a MAC address (a VPN's public IP, a phone number): "" is left
// for rows written before migration 010.
func stationMAC(callingStation string) string {
	mac, err := policy.NormalizeMAC(callingStation)
	if err != nil {
		return "-"
	}
	return mac
}

// ActiveAcctSessions lists the active sessions of the devices with the
// canonical MAC addresses macs, and of the user named user (when not ""),
// at most limit, newest first: whom a posture event's Disconnect or CoA
// must reach. Calling-Station-Id is compared in canonical form, so a NAS's
// "AA-BB-CC-DD-EE-FF:Staff" matches the inventory's aa:bb:cc:dd:ee:ff.
func (s *Store) ActiveAcctSessions(ctx context.Context, macs []string, user string, limit int) ([]AcctSession, error) {
	want := map[string]bool{}
	args := []any{}
	marks := make([]string, 0, len(macs))
	for _, m := range macs {
		if c := stationMAC(m); c != "-" && !want[c] {
			want[c] = true
			marks = append(marks, "?")
			args = append(args, c)
		}
	}
	if len(marks) == 0 && user == "" {
		return nil, nil
	}
	cond := `0`
	if len(marks) > 0 {
		// Rows written before station_mac existed are read whole and
		// compared here.
		cond = `station_mac IN (` + strings.Join(marks, ",") + `) OR (station_mac = '' AND calling_station != '')`
	}
	args = append(args, user, user, limit*4+16)
	// User names compare as the gate compares them, without case.
	rows, err := s.acctWhere(ctx, `status = 'active' AND (`+cond+` OR (? != '' AND user_name = ? COLLATE NOCASE))`, args...)
	if err != nil {
		return nil, err
	}
	var out []AcctSession
	for _, a := range rows {
		if (user != "" && strings.EqualFold(a.UserName, user)) || want[stationMAC(a.CallingStation)] {
			out = append(out, a)
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}
