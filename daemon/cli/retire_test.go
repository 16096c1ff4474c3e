package cli

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// `dirsync status` names a connector gone from plugins.hcl that still has
// active recipients, with their count and the command that retires it.
func TestStatusNamesUnconfigured(t *testing.T) {
	st := projections.NewState()
	for i := range 2 {
		r := events.Recipient{ID: "old.u" + fmt.Sprint(i), Connector: "old", ObjectID: "u" + fmt.Sprint(i), Email: fmt.Sprintf("u%d@contoso.com", i), Status: events.RecipientActive}
		if _, err := st.Apply(events.New(events.TypeRecipientCreated, events.RecipientSubject("old", r.ObjectID), "old", "j1", 0, r.UpdatedAt,
			events.RecipientChange{Recipient: r, Reason: "test"})); err != nil {
			t.Fatal(err)
		}
	}
	sock := serveSocket(t, api.NewServer(oneConnector{}, state{st}, zaptest.NewLogger(t)))
	out, err := run(t, "--socket", sock, "status")
	if err != nil {
		t.Fatal(err)
	}
	want := "old: not in plugins.hcl — 2 active recipients; retire it with `dirsync connector retire old`"
	if !strings.Contains(out, want) {
		t.Errorf("status:\n%s\nwant a line with %q", out, want)
	}
	if strings.Contains(out, "demo: not in plugins.hcl") {
		t.Errorf("status calls the configured connector unconfigured:\n%s", out)
	}
}

// `dirsync connector retire` refuses a rule other than archive or delete
// before it sends anything.
func TestRetireRefusesBadRule(t *testing.T) {
	var sent atomic.Int64
	sock := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
	for _, rule := range []string{"keep", "purge", ""} {
		_, err := run(t, "--socket", sock, "connector", "retire", "old", "--on-removed", rule)
		if err == nil || !strings.Contains(err.Error(), "use archive (the default) or delete") {
			t.Errorf("--on-removed %q: err = %v", rule, err)
		}
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("dirsync sent %d requests", n)
	}
}
