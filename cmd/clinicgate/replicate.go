package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/internal/daemon"
)

func (c *cli) backupReplicate(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "backup replicate", "backup replicate: set, show or off?", args, subcommands{
		"set":  c.replicateSet,
		"show": c.replicateShow,
		"off":  c.replicateOff,
	})
}

func (c *cli) replicateSet(fs *flag.FlagSet) action {
	target := fs.String("sftp", "", "the SFTP server and directory: user@host:port/path")
	keyFile := fs.String("key", "", "the SSH private key (without passphrase) that logs in to it")
	pwStdin := fs.Bool("password-stdin", false, "log in with a password read from standard input instead")
	hostKey := fs.String("host-key", "", "the server's host key fingerprint (SHA256:...) to check; without it the key seen now is pinned")
	var in admin.ReplicaInput
	return action{
		check: func([]string) (err error) {
			if *target == "" {
				return usageError{"backup replicate set needs --sftp user@host:port/path"}
			}
			if (*keyFile != "") == *pwStdin {
				return usageError{"give --key FILE or --password-stdin"}
			}
			in.Target, in.HostKey = *target, *hostKey
			if *keyFile != "" {
				if in.Key, err = readKeyFile(*keyFile); err != nil {
					return err
				}
			} else if in.Password, err = c.readSecret("SFTP password"); err != nil {
				return err
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, _ []string) error {
			r, err := svc.SetReplica(ctx, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "off-box replication set: %s (%s login)\nthe server's host key %s is pinned", r.Target, r.Auth, r.HostFingerprint)
			if *hostKey == "" {
				fmt.Fprint(c.out, " (check it against the server's own: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)")
			}
			fmt.Fprintln(c.out, "\nthe running daemon starts replicating within seconds.")
			fmt.Fprintln(c.out, "The replica holds no sealing key: keep one encrypted backup ('clinicgate backup create') off the box; a restore needs it.")
			return nil
		},
	}
}

func (c *cli) replicateShow(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		r, ok, err := svc.ReplicaSettings(ctx)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(c.out, "off-box replication is off: turn it on with 'clinicgate backup replicate set --sftp user@host:port/path --key FILE'")
			return nil
		}
		fmt.Fprintf(c.out, "target:    %s\nlogin:     %s\nhost key:  %s\nset:       %s by %s\n", r.Target, r.Auth, r.HostFingerprint, r.SetAt.Local().Format(time.DateTime+" MST"), r.SetBy)
		st, ok, err := svc.Status(ctx)
		switch {
		case err != nil:
			return err
		case !ok || time.Since(st.UpdatedAt) > time.Minute:
			fmt.Fprintln(c.out, "state:     the daemon is not running")
		case st.Replica == nil:
			fmt.Fprintln(c.out, "state:     not started yet")
		default:
			fmt.Fprintln(c.out, "state:     "+replicaState(*st.Replica))
		}
		return nil
	}}
}

// replicaState says in a line how far the replica is.
func replicaState(st replica.Status) string {
	s := "not replicated yet"
	if !st.LastReplicated.IsZero() {
		s = "last replicated " + st.LastReplicated.Local().Format(time.DateTime+" MST")
		if st.Lag > 0 {
			s += fmt.Sprintf(", %s behind", st.Lag.Round(time.Second))
		} else {
			s += ", up to date"
		}
	}
	if st.LastError != "" {
		s += "; last error (" + st.ErrorAt.Local().Format(time.TimeOnly) + "): " + st.LastError
	}
	return s
}

func (c *cli) replicateOff(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		if err := svc.ReplicaOff(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "off-box replication is off (what was replicated stays on the server)")
		return nil
	}}
}

// replicaFlags are restore --from-replica's options.
type replicaFlags struct {
	sftp, key, passwordFile, hostKey, keyBackup string
}

// restoreFromReplica restores the replica onto a data directory with no
// store, the key taken from an encrypted backup (its passphrase on
// standard input).
func (c *cli) restoreFromReplica(ctx context.Context, co common, force bool, f replicaFlags) error {
	if f.sftp == "" || f.keyBackup == "" || (f.key == "") == (f.passwordFile == "") {
		return usageError{"backup restore --from-replica needs --sftp user@host:port/path, --key FILE or --password-file FILE, and --key-backup FILE (an encrypted backup: it holds the sealing key)"}
	}
	t, err := replica.ParseTarget(f.sftp)
	if err != nil {
		return err
	}
	var cred replica.Credentials
	if f.key != "" {
		if cred.Key, err = readKeyFile(f.key); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return err
		}
		cred.Password = secrets.Secret(trimNewline(b))
	}
	cfg, err := co.resolveAdmin()
	if err != nil {
		return err
	}
	kb, err := os.Open(f.keyBackup)
	if err != nil {
		return err
	}
	defer kb.Close()
	if err := backup.CheckTarget(cfg.DataDir, force); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	hk, fp, err := replica.Probe(pctx, t, cred, f.hostKey)
	cancel()
	if err != nil {
		return err
	}
	if f.hostKey == "" {
		fmt.Fprintf(c.errw, "the replica server's host key is %s (check it against the server's own)\n", fp)
	}
	release, err := daemon.LockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer release()
	pass, err := c.readOnce("passphrase of the key backup")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rcfg := replica.Config{Target: t, HostKey: hk, Cred: cred}
	fetch := func(ctx context.Context, dbPath string) error { return replica.Restore(ctx, rcfg, dbPath, log) }
	if _, err := backup.RestoreFromReplica(ctx, kb, pass, fetch, cfg.DataDir, backup.RestoreOptions{Force: force, Actor: actor(), From: t.String()}); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "restored into %s from the replica at %s (key from %s); start the daemon on it\n", cfg.DataDir, t, filepath.Base(f.keyBackup))
	return nil
}

func readKeyFile(p string) (secrets.Secret, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	return b, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
