package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dirsync/dirsync/daemon/api"
)

// filterFlags adds the recipient filter flags to cmd.
func filterFlags(cmd *cobra.Command, f *api.RecipientFilter) {
	cmd.Flags().StringVar(&f.Connector, "connector", "", "only this connector's recipients")
	cmd.Flags().StringVar(&f.Status, "status", "", "only recipients with this status: active or archived")
	cmd.Flags().StringVar(&f.Tag, "tag", "", "only recipients with this tag")
	cmd.Flags().StringVar(&f.Group, "group", "", "only members of this group (display name)")
}

// fields prints name/value pairs as an aligned list.
func (a *app) fields(pairs ...string) {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
	}
	_ = tw.Flush()
}

func (a *app) recipientGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get <recipient-id>",
		Short: "Show one recipient by ID (<connector>.<objectId>, as recipients list shows it)",
		Example: `  dirsync recipients get demo.6e5b2ac0-1b84-4a4c-9f0e-5c2d1f1c3a10
  dirsync recipients get demo.6e5b2ac0-1b84-4a4c-9f0e-5c2d1f1c3a10 -o json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Recipient(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(r)
			}
			updated := r.UpdatedAt
			a.fields("ID", r.ID, "Email", r.Email, "Name", dash(r.DisplayName), "Given name", dash(r.GivenName),
				"Surname", dash(r.Surname), "Department", dash(r.Department), "Job title", dash(r.JobTitle),
				"Groups", dash(strings.Join(r.Groups, ", ")), "Tags", dash(strings.Join(r.Tags, ", ")),
				"Status", r.Status, "Connector", r.Connector, "Object ID", r.ObjectID, "Updated", fmtTime(&updated))
			return nil
		},
	}
}

func (a *app) recipientExportCmd() *cobra.Command {
	var f api.RecipientFilter
	var format, file string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export recipients as CSV or JSON, to stdout or a file",
		Long: `Export every recipient that matches the filters, sorted by email, as CSV
(the default) or JSON. CSV cells that a spreadsheet would run as a formula
(starting with = + - @) get a leading apostrophe. --file writes the file
with mode 0600 and only once the whole export arrived.`,
		Example: `  dirsync recipients export > recipients.csv
  dirsync recipients export --file recipients.csv --status active
  dirsync recipients export --format json --connector demo --tag q4 --file q4.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("format") && a.output == "json" {
				format = api.FormatJSON
			}
			if format != api.FormatCSV && format != api.FormatJSON {
				return fmt.Errorf("--format %q: use csv or json", format)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				return c.Export(cmd.Context(), format, f, a.out)
			}
			return writeFileAtomic(file, func(w io.Writer) error { return c.Export(cmd.Context(), format, f, w) })
		},
	}
	filterFlags(cmd, &f)
	cmd.Flags().StringVar(&format, "format", api.FormatCSV, "csv or json (-o json alone also selects json)")
	cmd.Flags().StringVar(&file, "file", "", "write to this file (mode 0600) instead of stdout")
	return cmd
}

// writeFileAtomic writes a file through a temporary file in its directory,
// renamed over it only when write succeeded: a failed export leaves no
// half file. The file is 0600: exports hold personal data.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	return nil
}

func (a *app) groupsCmd() *cobra.Command {
	root := &cobra.Command{Use: "groups", Short: "Query directory groups as last synced"}
	var connector string
	list := &cobra.Command{
		Use:   "list",
		Short: "List directory groups, by connector and name",
		Example: `  dirsync groups list
  dirsync groups list --connector demo -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			gs, err := c.Groups(cmd.Context(), connector)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(gs)
			}
			a.table("ID\tNAME\tMAIL\tTYPES\tMEMBERS", func(w io.Writer) {
				for _, g := range gs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", g.ID, g.DisplayName, dash(g.Mail),
						dash(strings.Join(g.GroupTypes, ",")), g.Members)
				}
			})
			fmt.Fprintf(a.out, "%d groups\n", len(gs))
			return nil
		},
	}
	list.Flags().StringVar(&connector, "connector", "", "only this connector's groups")
	show := &cobra.Command{
		Use:   "show <group-id>",
		Short: "Show a group (<connector>.<groupId>, as groups list shows it) and its members",
		Example: `  dirsync groups show demo.7d1e0c52-3a4f-4b8e-9d6a-2f0e1c5b7a93
  dirsync groups show demo.7d1e0c52-3a4f-4b8e-9d6a-2f0e1c5b7a93 -o json`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			g, err := c.Group(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(g)
			}
			a.fields("ID", g.ID, "Name", g.DisplayName, "Mail", dash(g.Mail),
				"Types", dash(strings.Join(g.GroupTypes, ",")), "Members", fmt.Sprint(g.Members))
			a.table("EMAIL\tNAME\tRECIPIENT", func(w io.Writer) {
				for _, m := range g.MemberList {
					rec := m.RecipientID
					if rec == "" {
						rec = "- (not a recipient)"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", dash(m.Email), dash(m.DisplayName), rec)
				}
			})
			return nil
		},
	}
	root.AddCommand(list, show)
	return root
}
