package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
)

// unconfiguredLine is `dirsync status`'s line about a connector gone from
// plugins.hcl, "" for a configured one or one with nothing active left.
func unconfiguredLine(s api.ConnectorStatus) string {
	if s.Configured || s.Recipients == 0 {
		return ""
	}
	return fmt.Sprintf("%s: not in plugins.hcl — %d active recipients; retire it with `dirsync connector retire %s` (or, if it was renamed, add renamed_from = %q to the new connector block)",
		s.Connector, s.Recipients, s.Connector, s.Connector)
}

func (a *app) retireCmd() *cobra.Command {
	var req api.RetireRequest
	var noWait bool
	cmd := &cobra.Command{
		Use:   "retire <connector>",
		Short: "Archive (or delete) the recipients of a connector removed or renamed in plugins.hcl, as a job",
		Long: `A connector removed or renamed in plugins.hcl keeps its recipients active,
and their emails, until it is retired: dirsync status lists it as "not in
plugins.hcl". retire runs a job for it that archives its active recipients
(--on-removed archive, the default: reversible, history kept) or deletes all
its recipients (--on-removed delete), with recipient events downstream
services see. The connector's own on_removed and max_removals went with its
block, so the rule is this command's, and a retire of more than 50 recipients
that are more than 20% of its active ones needs --allow-mass-removal.
A connector still in plugins.hcl is refused: remove its block and reload
dirsyncd (systemctl reload dirsyncd) first.`,
		Example: `  dirsync connector retire old
  dirsync connector retire old --allow-mass-removal
  dirsync connector retire old --on-removed delete --allow-mass-removal -o json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch req.OnRemoved {
			case "archive", "delete":
			default:
				return fmt.Errorf("--on-removed %q: use archive (the default) or delete", req.OnRemoved)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := c.Retire(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if noWait {
				if a.output == "json" {
					return a.printJSON(j)
				}
				fmt.Fprintf(a.out, "retire %s requested for connector %s (%s); follow it with: dirsync jobs show %s\n", j.ID, j.Connector, j.State, j.ID)
				return nil
			}
			if a.output != "json" {
				fmt.Fprintf(a.out, "retire %s requested for connector %s\n", j.ID, j.Connector)
			}
			final, err := a.follow(cmd.Context(), c, j.ID)
			if err != nil && cmd.Context().Err() != nil {
				return fmt.Errorf("stopped following retire %s; the job goes on in dirsyncd. Follow it with: dirsync jobs show %s", j.ID, j.ID)
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := a.printJSON(final); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.out, "retire %s: %s", final.ID, final.State)
				if final.Reason != "" {
					fmt.Fprintf(a.out, ": %s", final.Reason)
				}
				fmt.Fprintln(a.out)
				if s := final.Summary; s != nil && final.State == events.StateCompleted {
					fmt.Fprintf(a.out, "  connector %s: %d recipients archived, %d deleted; %d active\n", final.Connector, s.RecipientsArchived, s.RecipientsRemoved, s.Recipients)
				}
			}
			if final.State != events.StateCompleted {
				return ErrFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.OnRemoved, "on-removed", "archive", "what becomes of the connector's recipients: archive (its active ones) or delete (all of them)")
	f.BoolVar(&req.AllowMassRemoval, "allow-mass-removal", false, "confirm a retire that removes more recipients than the default max_removals rule allows")
	f.BoolVar(&noWait, "no-wait", false, "return once the job is queued instead of following it to the end")
	return cmd
}
