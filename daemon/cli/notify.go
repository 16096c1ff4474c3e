package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) notifyCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "notify",
		Short: "Notifications: the notify block's webhooks",
	}
	root.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show each webhook's deliveries: delivered, failed and retried, refused, waiting, and the last attempt",
		Example: `  dirsync notify status
  dirsync notify status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Notify(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(st)
			}
			if len(st.Webhooks) == 0 {
				fmt.Fprintln(a.out, "no webhook: add a notify { webhook \"name\" { … } } block to plugins.hcl (README.md, \"Notifications\")")
				return nil
			}
			a.table("WEBHOOK\tEVENTS\tDELIVERED\tFAILED\tREFUSED\tWAITING\tLAST ATTEMPT\tLAST RESULT\tNEXT RETRY", func(w io.Writer) {
				for _, s := range st.Webhooks {
					next := "-"
					if s.NextRetry != nil && s.LastResult == "failed" {
						next = fmtTime(s.NextRetry)
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, strings.Join(s.Events, ","), s.Delivered, s.Failed, s.Rejected,
						s.Pending, fmtTime(s.LastAttempt), dash(s.LastResult), next)
				}
			})
			for _, s := range st.Webhooks {
				if s.LastError != "" {
					fmt.Fprintf(a.out, "%s: last attempt: %s (%s); the receiver at %s must answer 2xx, see its log\n", s.Name, s.LastError, s.LastResult, s.URL)
				}
			}
			return nil
		},
	})
	return root
}
