package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/internal/daemon"
)

func (c *cli) backup(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "restore" {
		return c.backupRestore(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "replicate" {
		return c.backupReplicate(ctx, args[1:])
	}
	return c.dispatch(ctx, "backup", "backup: create, list, restore or replicate?", args, subcommands{
		"create": c.backupCreate,
		"list":   c.backupList,
	})
}

func (c *cli) backupCreate(fs *flag.FlagSet) action {
	out := fs.String("out", "", "write the backup to this new file (a USB stick) instead of the data directory's backups/")
	var pass secrets.Secret
	return action{
		check: func([]string) (err error) {
			if *out != "" {
				if *out, err = filepath.Abs(*out); err != nil {
					return err
				}
			}
			pass, err = c.readSecret("backup passphrase (at least 12 characters; keep it apart from the backup)")
			if err == nil {
				err = backup.CheckPassphrase(pass)
			}
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, _ []string) error {
			fmt.Fprintln(c.errw, "writing the backup (the passphrase takes a second to stretch)...")
			bf, err := svc.CreateBackup(ctx, pass, admin.BackupOptions{Out: *out, Version: versionString()})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "backup written: %s (%d bytes)\n", bf.Path, bf.Size)
			if *out == "" {
				fmt.Fprintf(c.out, "fetch it over SFTP from the console's SSH port: sftp -P PORT admin@APPLIANCE:%s/%s\n", admin.BackupDir, bf.Name)
			}
			return nil
		},
	}
}

func (c *cli) backupList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		list, err := svc.Backups(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(c.out, "no backups yet: make one with 'clinicgate backup create'")
			return nil
		}
		tw := c.table("NAME\tSIZE\tMADE")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", b.Name, b.Size, b.Created.Local().Format("2006-01-02 15:04 MST"))
		}
		return tw.Flush()
	}}
}

// backupRestore restores onto a data directory with no store: there is no
// admin service to open yet, so it does not go through dispatch. It holds
// the data directory's lock throughout, so no daemon runs on it meanwhile.
func (c *cli) backupRestore(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("backup restore", &co)
	force := fs.Bool("force", false, "restore over an existing store (it is moved aside into DATA/replaced-TIME/)")
	fromReplica := fs.Bool("from-replica", false, "restore the newest state of the off-box replica instead of a backup file")
	var rf replicaFlags
	fs.StringVar(&rf.sftp, "sftp", "", "with --from-replica: the replica, user@host:port/path")
	fs.StringVar(&rf.key, "key", "", "with --from-replica: the SSH private key that logs in to it")
	fs.StringVar(&rf.passwordFile, "password-file", "", "with --from-replica: a file holding the SFTP password instead")
	fs.StringVar(&rf.hostKey, "host-key", "", "with --from-replica: the server's host key fingerprint (SHA256:...) to check")
	fs.StringVar(&rf.keyBackup, "key-backup", "", "with --from-replica: an encrypted backup of this appliance (it holds the sealing key the replica lacks)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *fromReplica {
		if len(pos) != 0 {
			return usageError{"backup restore --from-replica takes no backup file (give it as --key-backup)"}
		}
		return c.restoreFromReplica(ctx, co, *force, rf)
	}
	if len(pos) != 1 {
		return usageError{"expected one backup file"}
	}
	cfg, err := co.resolveAdmin()
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := backup.CheckTarget(cfg.DataDir, *force); err != nil {
		return err
	}
	release, err := daemon.LockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer release()
	pass, err := c.readOnce("backup passphrase")
	if err != nil {
		return err
	}
	m, err := backup.Restore(ctx, f, pass, cfg.DataDir, backup.RestoreOptions{Force: *force, Actor: actor(), From: filepath.Base(pos[0])})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "restored into %s: the store as it was at %s (audit up to entry %d); start the daemon on it\n",
		cfg.DataDir, m.Created.Local().Format(time.DateTime+" MST"), m.AuditSeq)
	return nil
}

// readOnce reads a passphrase that is checked, not set: one prompt on a
// terminal, else the whole of standard input minus a trailing newline.
func (c *cli) readOnce(prompt string) (secrets.Secret, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.errw, prompt+": ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errw)
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, 4096))
	if err != nil {
		return nil, err
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("nothing was given on standard input")
	}
	return b, nil
}
