package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// cli is one run of the command line: where it reads and writes.
type cli struct {
	stdin     io.Reader
	out, errw io.Writer
}

// common are the flags every command takes.
type common struct {
	data, config string
}

func (c *cli) flags(name string, co *common) *flag.FlagSet {
	fs := flag.NewFlagSet("clinicgate "+name, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	fs.StringVar(&co.data, "data", "", "data directory (default: data_dir of --config if given, else $CLINICGATE_DATA, else /var/lib/clinicgate)")
	fs.StringVar(&co.config, "config", "", "bootstrap config file (YAML)")
	return fs
}

// action is one subcommand ("user add"): the positional arguments it
// wants, what it checks before the store is opened (flags, a secret on
// standard input), and what it does with the admin service.
type action struct {
	args int    // how many positional arguments; -1: check counts them
	what string // how the usage error names them ("one user name")
	// check runs after parsing, before anything is opened.
	check func(pos []string) error
	// run does the work with the store open.
	run func(ctx context.Context, svc *admin.Service, pos []string) error
	// offline, instead of run, does work that needs only the config.
	offline func(cfg config.Config, pos []string) error
	// root keeps root: the system helper ('system apply') writes /etc and
	// runs networkctl as root, so it must not become the data
	// directory's owner as the admin commands do.
	root bool
}

// subcommands maps a subcommand's name to a function that declares its
// flags on fs and returns what it does with them.
type subcommands map[string]func(fs *flag.FlagSet) action

// dispatch is every admin command's one sequence: parse the flags, check
// the arguments, open the store as the operator, run, close.
func (c *cli) dispatch(ctx context.Context, group, hint string, args []string, subs subcommands) error {
	if len(args) == 0 {
		return usageError{hint}
	}
	declare, ok := subs[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("%s: unknown subcommand %q", group, args[0])}
	}
	var co common
	fs := c.flags(group+" "+args[0], &co)
	a := declare(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if a.args >= 0 && len(pos) != a.args {
		what := a.what
		if what == "" {
			what = "no arguments"
		}
		return usageError{fmt.Sprintf("expected %s", what)}
	}
	if a.check != nil {
		if err := a.check(pos); err != nil {
			return err
		}
	}
	resolve := co.resolveAdmin
	if a.root {
		resolve = co.resolve
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	if a.offline != nil {
		return a.offline(cfg, pos)
	}
	svc, done, err := openAdmin(ctx, cfg.DataDir, actor())
	if err != nil {
		return err
	}
	defer done()
	return a.run(ctx, svc, pos)
}

// parse parses flags that may stand before, between or after positional
// arguments ("user add alice --group nurses") and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// given reports which flags were given on the command line.
func given(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// errHelp ends a command after -h printed its options.
var errHelp = errors.New("help shown")

func (co common) resolve() (config.Config, error) {
	cfg, err := config.Load(co.config)
	if err != nil {
		return cfg, err
	}
	switch {
	case co.data != "":
		cfg.DataDir = co.data
	case os.Getenv("CLINICGATE_DATA") != "" && co.config == "":
		cfg.DataDir = os.Getenv("CLINICGATE_DATA")
	}
	return cfg, nil
}

// resolveAdmin is resolve for the admin commands: when run as root on a
// data directory another user owns (the clinicgate service user), the
// command first becomes that user, so that files SQLite creates (the -wal
// and -shm files) stay writable by the daemon.
func (co common) resolveAdmin() (config.Config, error) {
	cfg, err := co.resolve()
	if err != nil {
		return cfg, err
	}
	return cfg, becomeOwner(cfg.DataDir)
}

// openAdmin opens the admin service on the store in dir, acting as actor.
func openAdmin(ctx context.Context, dir, actor string) (*admin.Service, func(), error) {
	return admin.Open(ctx, dir, actor)
}

// actor names the operator for the audit: the login behind sudo if any.
func actor() string {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

// readSecret reads a password or secret from stdin: the whole input minus
// one trailing newline. From a terminal it prompts twice without echo.
func (c *cli) readSecret(prompt string) (secrets.Secret, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.errw, prompt+": ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errw)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(c.errw, "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errw)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			return nil, errors.New("the two entries differ; nothing changed")
		}
		return a, nil
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, 4096))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, errors.New("nothing was given on standard input")
	}
	return b, nil
}

// table starts an aligned listing under header (columns split by tabs);
// the caller writes rows and flushes.
func (c *cli) table(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
