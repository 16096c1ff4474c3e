// Package cli is the dirsync operator command: it finds the running daemon
// through plugins.hcl and talks to it over the daemon's unix socket.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// ErrFailed marks a command whose operation ran but did not succeed (a
// failed job or connection test): its output already said why.
var ErrFailed = errors.New("failed")

type app struct {
	configPath string
	socket     string
	output     string
	out        io.Writer
	errOut     io.Writer
}

// NewCommand builds the dirsync command tree writing to out and errOut.
func NewCommand(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "dirsync",
		Short: "Operate dirsyncd, the directory-to-recipients sync daemon",
		Long: `dirsync talks to the running dirsyncd through the unix socket in its data
directory, found through plugins.hcl (--config). Every command that prints
data takes -o json. Shell completion: dirsync completion bash|zsh|fish.`,
		Example: `  dirsync status                          # each connector: current job, last sync date, next run
  dirsync sync demo --wait                # sync connector demo now and follow it to the end
  dirsync sync demo --dry-run             # the changes a sync would make, nothing applied
  dirsync jobs                            # sync jobs, newest first; jobs show <sync-id> for one
  dirsync recipients list --tag q4        # recipients (-o json for scripts)
  dirsync connector test demo             # check credentials and permissions
  dirsync --config /etc/dirsync/plugins.hcl status   # a daemon whose plugins.hcl is elsewhere`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&a.configPath, "config", "./plugins.hcl", "the daemon's plugins.hcl (it says where the daemon listens)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&a.socket, "socket", "", "the daemon's control socket, instead of finding it through --config (e.g. while plugins.hcl has an error)")

	root.AddCommand(a.statusCmd(), a.syncCmd(), a.jobsCmd(), a.recipientsCmd(), a.groupsCmd(), a.connectorCmd(), a.notifyCmd())
	return root
}

func (a *app) client() (*api.Client, error) {
	if a.output != "table" && a.output != "json" {
		return nil, fmt.Errorf("unknown output format %q: use -o table or -o json", a.output)
	}
	if a.socket != "" {
		return api.NewClient(a.socket), nil
	}
	cfg, err := config.Load(a.configPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no plugins.hcl at %s: dirsync finds the daemon through the daemon's plugins.hcl; point --config at it "+
			"(e.g. dirsync --config /etc/dirsync/plugins.hcl status), or pass --socket DATA_DIR/%s", a.configPath, config.SocketName)
	}
	if err != nil {
		return nil, fmt.Errorf("%w\n(to reach a daemon still running on its old configuration, pass --socket DATA_DIR/%s)", err, config.SocketName)
	}
	return api.NewClient(cfg.SocketPath()), nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) table(header string, rows func(w io.Writer)) {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	_ = tw.Flush()
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each connector's sync status and last sync date",
		Example: `  dirsync status
  dirsync status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(st)
			}
			a.table("CONNECTOR\tHELD BY\tCURRENT JOB\tLAST JOB\tLAST RESULT\tLAST SYNC\tNEXT RUN\tRECIPIENTS\tARCHIVED\tUSERS\tGROUPS", func(w io.Writer) {
				for _, s := range st.Connectors {
					cur := "-"
					if s.CurrentJob != "" {
						cur = s.CurrentJob + " (" + s.CurrentState + ")"
					}
					next := "not scheduled"
					if s.NextRun != nil {
						next = fmtTime(s.NextRun)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.Connector, heldBy(s), cur, dash(s.LastJob), dash(s.LastState),
						fmtTime(s.LastSyncAt), next, s.Recipients, s.Archived, s.Users, s.Groups)
				}
			})
			if len(st.Replicas) > 1 {
				fmt.Fprintf(a.out, "replicas: %s (this one: %s)\n", strings.Join(st.Replicas, ", "), st.Replica)
			}
			for _, s := range st.Connectors {
				if s.LastReason != "" {
					fmt.Fprintf(a.out, "%s: last job %s %s: %s\n", s.Connector, s.LastJob, s.LastState, s.LastReason)
				}
			}
			for _, s := range st.Connectors {
				if line := unconfiguredLine(s); line != "" {
					fmt.Fprintln(a.out, line)
				}
			}
			return nil
		},
	}
}

// heldBy names the replica running a connector's jobs and its epoch,
// or says none does (a failover under way, or a connector no longer
// configured).
func heldBy(s api.ConnectorStatus) string {
	if s.Holder == nil {
		return "-"
	}
	return fmt.Sprintf("%s (epoch %d)", s.Holder.Replica, s.Holder.Epoch)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) syncCmd() *cobra.Command {
	var wait, full bool
	var req api.SyncRequest
	var updateExisting, excludeUnlicensed bool
	cmd := &cobra.Command{
		Use:   "sync <connector>",
		Short: "Request a sync job for a connector (--wait to follow it to the end)",
		Example: `  dirsync sync demo --wait
  dirsync sync demo --dry-run                      # the changes a sync would make, nothing applied
  dirsync sync demo --wait --full                  # read the whole directory, not only changes
  dirsync sync demo --wait --tag q4 --tag-mode replace --update-existing=false
  dirsync sync demo --wait --allow-mass-removal    # past max_removals, when the removals are real`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Full = full
			if cmd.Flags().Changed("update-existing") {
				req.UpdateExisting = &updateExisting
			}
			if cmd.Flags().Changed("exclude-unlicensed") {
				req.ExcludeUnlicensed = &excludeUnlicensed
			}
			// The daemon checks the options too, with the same words; here
			// a mistake is found before anything is sent, daemon up or not.
			opts, err := req.JobOptions.Validated()
			if err != nil {
				return fmt.Errorf("invalid sync request: %w", err)
			}
			req.JobOptions = opts
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := c.Sync(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if req.DryRun {
				wait = true
			}
			if !wait {
				if a.output == "json" {
					return a.printJSON(j)
				}
				fmt.Fprintf(a.out, "sync %s requested for connector %s (%s); follow it with: dirsync jobs\n", j.ID, j.Connector, j.State)
				return nil
			}
			if a.output != "json" {
				fmt.Fprintf(a.out, "sync %s requested for connector %s\n", j.ID, j.Connector)
			}
			final, err := a.follow(cmd.Context(), c, j.ID)
			if err != nil && cmd.Context().Err() != nil {
				// Ctrl-C stops the following, not the job.
				return fmt.Errorf("stopped following sync %s; the job goes on in dirsyncd. Follow it with: dirsync jobs show %s (or stop it with: dirsync jobs cancel %s)", j.ID, j.ID, j.ID)
			}
			if err != nil {
				return err
			}
			if req.DryRun && final.State == events.StateCompleted {
				ch, err := c.Changes(cmd.Context(), final.ID)
				if err != nil {
					return err
				}
				if a.output == "json" {
					if err := a.printJSON(ch); err != nil {
						return err
					}
				} else {
					a.printOutcome(final)
					fmt.Fprintf(a.out, "dry run: nothing was changed; a real sync would make these %d changes:\n", len(ch.Changes))
					a.printChanges(ch.Changes)
					if len(ch.Changes) > 0 {
						fmt.Fprintln(a.out, "why a user is in or out: dirsync recipients explain <email>")
					}
				}
				return nil
			}
			if a.output == "json" {
				if err := a.printJSON(final); err != nil {
					return err
				}
			} else {
				a.printOutcome(final)
			}
			if final.State != events.StateCompleted {
				return ErrFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait", false, "wait for the job to end, showing its progress; exit non-zero unless it COMPLETED")
	f.BoolVar(&full, "full", false, "read the whole directory even where an incremental sync is possible")
	f.BoolVar(&req.DryRun, "dry-run", false, "run to the end of PROCESSING, apply nothing, and print the changes a real sync would make (implies --wait)")
	f.BoolVar(&req.AllowMassRemoval, "allow-mass-removal", false, "let this job remove more recipients than max_removals allows")
	f.StringArrayVar(&req.Tags, "tag", nil, fmt.Sprintf("tag the imported recipients, for this job only (repeatable, at most %d tags of 1 to %d characters; overrides the import block's tags)", events.MaxJobTags, events.MaxTagRunes))
	f.StringVar(&req.TagMode, "tag-mode", "", "append or replace existing recipients' tags, for this job only")
	f.BoolVar(&updateExisting, "update-existing", true, "update existing recipients' fields and tags (--update-existing=false: only create new ones), for this job only")
	f.BoolVar(&excludeUnlicensed, "exclude-unlicensed", false, "leave out users without an assigned license, for this job only")
	return cmd
}

// printChanges lists recipient changes, one line each.
func (a *app) printChanges(changes []projections.Change) {
	a.table("CHANGE\tEMAIL\tRECIPIENT\tFIELDS\tREASON", func(w io.Writer) {
		for _, c := range changes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Email, c.RecipientID, dash(strings.Join(c.Changed, ",")), c.Reason)
		}
	})
}

// follow polls a job until it is final, printing each state change and
// the progress as it goes: a live bar on a terminal, plain lines otherwise.
func (a *app) follow(ctx context.Context, c *api.Client, id string) (api.Job, error) {
	seen := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var view progressView
	if a.output != "json" {
		view = newProgressView(a.out)
		defer view.done()
	}
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return j, err
		}
		if view != nil {
			for ; seen < len(j.History); seen++ {
				view.state(j.History[seen])
			}
			if p := j.Progress; p != nil {
				view.progress(*p)
			}
		}
		if events.Final(j.State) {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-tick.C:
		}
	}
}

func (a *app) printOutcome(j api.Job) {
	fmt.Fprintf(a.out, "sync %s: %s", j.ID, j.State)
	if j.Reason != "" {
		fmt.Fprintf(a.out, ": %s", j.Reason)
	}
	fmt.Fprintln(a.out)
	if s := j.Summary; s != nil {
		read := "changes only"
		if s.FullRead {
			read = "full read"
		}
		fmt.Fprintf(a.out, "  %s: retrieved %d users, %d groups, %d memberships in %d directory requests (%d retried, %.1fs throttled); skipped %d non-user members\n",
			read, s.UsersRetrieved, s.GroupsRetrieved, s.MembershipsRetrieved, s.Requests(), s.Retries,
			float64(s.ThrottleWaitMS)/1000, s.SkippedMembers)
		if s.ResyncReason != "" {
			fmt.Fprintf(a.out, "  resync: %s\n", s.ResyncReason)
		}
		fmt.Fprintf(a.out, "  recipients: %d created, %d updated, %d archived, %d restored, %d deleted, %d kept, %d unchanged; %d active; %d directory events; %.1fs\n",
			s.RecipientsCreated, s.RecipientsUpdated, s.RecipientsArchived, s.RecipientsRestored, s.RecipientsRemoved, s.RecipientsKept,
			s.RecipientsUnchanged, s.Recipients, s.DirectoryEvents, float64(s.DurationMS)/1000)
		if len(s.Skipped) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(s.Skipped)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, s.Skipped[k]))
			}
			fmt.Fprintf(a.out, "  users skipped: %s (why one is: dirsync recipients explain <email>)\n", strings.Join(parts, ", "))
		}
		for _, d := range s.DuplicateEmails {
			fmt.Fprintf(a.out, "  duplicate email: %s\n", d)
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(a.out, "  warning: %s\n", w)
		}
	}
}

func (a *app) jobsCmd() *cobra.Command {
	var connector string
	var limit int
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List sync jobs, newest first",
		Example: `  dirsync jobs
  dirsync jobs --connector demo --limit 5 -o json
  dirsync jobs show <sync-id>
  dirsync jobs cancel <sync-id>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Jobs(cmd.Context(), connector, limit)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(list)
			}
			a.table("SYNC ID\tCONNECTOR\tSTATE\tREQUESTED\tBY\tRECIPIENTS\tREASON", func(w io.Writer) {
				for _, j := range list {
					fmt.Fprintln(w, jobRow(j))
				}
			})
			for _, j := range list {
				if firstSentence(j.Reason) != j.Reason {
					fmt.Fprintln(a.out, "reasons are cut to their first sentence: dirsync jobs show <sync-id> prints them whole")
					break
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&connector, "connector", "", "only this connector's jobs")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many jobs")
	cmd.AddCommand(&cobra.Command{
		Use:   "show <sync-id>",
		Short: "Show a job: its states, summary and every recipient change it made",
		Args:  oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ch, err := c.Changes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(ch)
			}
			for _, h := range ch.Job.History {
				fmt.Fprintf(a.out, "  %s  %s\n", h.At.Local().Format("2006-01-02 15:04:05.000"), h.State)
			}
			a.printOutcome(ch.Job)
			if ch.Job.DryRun() {
				fmt.Fprintln(a.out, "dry run: these changes were not applied")
			}
			a.printChanges(ch.Changes)
			return nil
		},
	}, &cobra.Command{
		Use:   "cancel <sync-id>",
		Short: "Cancel a queued job, or a running one that has not reached SAVING",
		Args:  oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			j, err := c.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(j)
			}
			fmt.Fprintf(a.out, "sync %s: cancel requested (now %s)\n", j.ID, j.State)
			return nil
		},
	})
	return cmd
}

func (a *app) recipientsCmd() *cobra.Command {
	root := &cobra.Command{Use: "recipients", Short: "Query recipients"}
	var f api.RecipientFilter
	list := &cobra.Command{
		Use:   "list",
		Short: "List recipients, sorted by email",
		Example: `  dirsync recipients list
  dirsync recipients list --status archived
  dirsync recipients list --tag q4 --group "Marketing Team" --connector demo -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rs, err := c.Recipients(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(rs)
			}
			a.table("EMAIL\tNAME\tDEPARTMENT\tGROUPS\tSTATUS\tID", func(w io.Writer) {
				for _, r := range rs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Email, r.DisplayName, dash(r.Department),
						dash(strings.Join(r.Groups, ", ")), r.Status, r.ID)
				}
			})
			fmt.Fprintf(a.out, "%d recipients\n", len(rs))
			return nil
		},
	}
	list.Flags().StringVar(&f.Connector, "connector", "", "only this connector's recipients")
	list.Flags().StringVar(&f.Status, "status", "", "only recipients with this status: active or archived")
	list.Flags().StringVar(&f.Tag, "tag", "", "only recipients with this tag")
	list.Flags().StringVar(&f.Group, "group", "", "only members of this group (display name)")
	history := &cobra.Command{
		Use:     "history <email>",
		Short:   "List every change of the recipient with this email: what, when, which sync and why",
		Example: `  dirsync recipients history jane.doe@contoso.com`,
		Args:    oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := c.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(h)
			}
			for _, id := range slices.Sorted(maps.Keys(h.Changes)) {
				fmt.Fprintf(a.out, "recipient %s\n", id)
				a.table("TIME\tSYNC ID\tCHANGE\tEMAIL\tFIELDS\tREASON", func(w io.Writer) {
					for _, c := range h.Changes[id] {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Time.Local().Format("2006-01-02 15:04:05"), c.JobID, c.Kind, c.Email,
							dash(strings.Join(c.Changed, ",")), c.Reason)
					}
				})
			}
			return nil
		},
	}
	root.AddCommand(list, a.recipientGetCmd(), history, a.recipientExportCmd(), a.recipientExplainCmd())
	return root
}

func (a *app) recipientExplainCmd() *cobra.Command {
	var connector string
	cmd := &cobra.Command{
		Use:   "explain <email|object-id>",
		Short: "Say why a directory user is or is not a recipient: every rule of the import policy and its verdict",
		Long: `Applies the import policy of plugins.hcl (not a job's one-time options) to the
directory users with this object ID or address (any of theirs, aliases too),
as the read models hold them after the last sync, and prints each rule's
verdict and the decision. A skip count in a job summary or a dry run names
the reason; this names the rule and, for a group scope, the nesting path.`,
		Example: `  dirsync recipients explain jane.doe@contoso.com
  dirsync recipients explain 6e5b2ac0-1b84-4a4c-9f0e-5c2d1f1c3a10 --connector demo -o json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ex, err := c.Explain(cmd.Context(), args[0], connector)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(ex)
			}
			for i, e := range ex.Explanations {
				if i > 0 {
					fmt.Fprintln(a.out)
				}
				name := ""
				if e.DisplayName != "" {
					name = " (" + e.DisplayName + ")"
				}
				fmt.Fprintf(a.out, "connector %s, user %s%s\n", e.Connector, e.ObjectID, name)
				a.table("RULE\tVERDICT\tDETAIL", func(w io.Writer) {
					for _, v := range e.Rules {
						fmt.Fprintf(w, "%s\t%s\t%s\n", v.Rule, v.Verdict, v.Detail)
					}
				})
				fmt.Fprintf(a.out, "decision: %s\n", e.Decision)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&connector, "connector", "", "only this connector's directory")
	return cmd
}

func (a *app) connectorCmd() *cobra.Command {
	root := &cobra.Command{Use: "connector", Short: "Manage connectors"}
	test := &cobra.Command{
		Use:   "test <connector>",
		Short: "Test a connector's credentials and permissions against its directory",
		Example: `  dirsync connector test demo
  dirsync connector test demo -o json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Test(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else {
				for _, ch := range res.Checks {
					mark := "ok  "
					switch {
					case !ch.OK:
						mark = "FAIL"
					case ch.Warning:
						mark = "WARN"
					}
					fmt.Fprintf(a.out, "[%s] %s: %s\n", mark, ch.Name, ch.Detail)
					if (!ch.OK || ch.Warning) && ch.Remedy != "" {
						fmt.Fprintf(a.out, "       what to do: %s\n", ch.Remedy)
					}
				}
				if res.OK {
					fmt.Fprintf(a.out, "connector %s: connection test passed\n", res.Connector)
				} else {
					fmt.Fprintf(a.out, "connector %s: connection test FAILED\n", res.Connector)
				}
			}
			if !res.OK {
				return ErrFailed
			}
			return nil
		},
	}
	root.AddCommand(test, a.retireCmd())
	return root
}

// jobRow is a job's line in the `dirsync jobs` table (tab-separated).
func jobRow(j api.Job) string {
	rec := "-"
	if j.Summary != nil && j.State == events.StateCompleted {
		rec = recipientCounts(j.Summary)
		if j.Summary.DryRun || j.DryRun() {
			// The counts are what a real sync would have done.
			rec = "dry run: " + rec
		}
	}
	t := j.RequestedAt
	return strings.Join([]string{j.ID, j.Connector, j.State, fmtTime(&t), dash(j.RequestedBy), rec, dash(firstSentence(j.Reason))}, "\t")
}

// recipientCounts names every kind of change a job made, omitting the
// kinds it did not make: "4 created, 16 updated, 7 archived, 1 restored".
// Words, not "+4 ~16 -0": archived and restored recipients have no sign.
func recipientCounts(s *events.Summary) string {
	var parts []string
	for _, c := range []struct {
		n    int
		kind string
	}{
		{s.RecipientsCreated, "created"}, {s.RecipientsUpdated, "updated"}, {s.RecipientsArchived, "archived"},
		{s.RecipientsRestored, "restored"}, {s.RecipientsRemoved, "deleted"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.kind))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// firstSentence keeps a table cell short: a reason's first sentence, with
// "…" when there is more (`dirsync jobs show` prints it whole).
func firstSentence(s string) string {
	const max = 100
	cut := len(s)
	if i := strings.Index(s, ". "); i >= 0 {
		cut = i + 1
	}
	out := s[:cut]
	if r := []rune(out); len(r) > max {
		out = string(r[:max-1])
	}
	if len(out) < len(s) {
		out = strings.TrimRight(out, " ") + "…"
	}
	return out
}

// oneArg is cobra.ExactArgs(1) with messages that name the missing
// argument, taken from the command's Use ("sync <connector>").
func oneArg(cmd *cobra.Command, args []string) error {
	name := strings.TrimSpace(strings.TrimPrefix(cmd.Use, cmd.Name()))
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing %s: %s %s (see %s --help)", name, cmd.CommandPath(), name, cmd.CommandPath())
	case len(args) > 1:
		return fmt.Errorf("%s takes one %s, got %d arguments: %s", cmd.CommandPath(), name, len(args), strings.Join(args, " "))
	}
	return nil
}
