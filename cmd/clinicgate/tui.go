package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/term"

	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/tui"
)

// tui opens the console on this terminal.
func (c *cli) tui(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("tui", &co)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// A broken bootstrap file must not lock the contractor out of the
	// console they need to repair things: say what is wrong, and open the
	// store in the data directory anyway.
	var warning string
	if _, err := config.Load(co.config); err != nil && co.config != "" {
		warning = "THE CONFIG FILE IS BROKEN, the daemon will not start until it is fixed: " + err.Error()
		fmt.Fprintln(c.errw, "clinicgate:", warning)
		co.config = ""
		if co.data == "" {
			co.data = config.Default().DataDir
		}
	}
	cfg, err := co.resolveAdmin()
	if err != nil {
		return err
	}
	// Changes made in the console are audited as the console's.
	svc, done, err := openAdmin(ctx, cfg.DataDir, "console:"+strings.TrimPrefix(actor(), "cli:"))
	if err != nil {
		return err
	}
	defer done()
	in, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return errors.New("the console needs a terminal (run it on the appliance's screen or over ssh -t)")
	}
	p := tea.NewProgram(tui.New(svc, tui.Options{Version: versionString(), Warning: warning}), tea.WithAltScreen(), tea.WithMouseCellMotion(),
		tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(c.out))
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
