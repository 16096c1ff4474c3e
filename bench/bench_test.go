package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// binaries builds the daemon and the connectors once for the test.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./daemon/cmd/dirsyncd", "./daemon/cmd/dirsync", "./connectors/cmd/dirsync-azuread", "./connectors/cmd/dirsync-ldap")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// Every scenario runs at a tiny size and yields rows with a value, so
// the benchmark code cannot rot between full runs.
func TestScenariosTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			env := &Env{Bin: bin, Dir: t.TempDir(), Log: testWriter{t}}
			rows, err := sc.Run(ctx, env, Tiny())
			if skip := (*Skipped)(nil); errors.As(err, &skip) {
				t.Skip(skip.Reason)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			for _, r := range rows {
				// A count of events may be 0 (what an unchanged re-read
				// should write); every other figure is measured, so > 0.
				if r.Value < 0 || (r.Value == 0 && r.Unit != "events") || r.Unit == "" || r.Metric == "" || r.Target == "" {
					t.Errorf("incomplete row: %+v", r)
				}
			}
			for _, want := range tinyRows[sc.Name] {
				if !slices.ContainsFunc(rows, func(r Row) bool { return strings.HasPrefix(r.Scenario, want) }) {
					t.Errorf("no %q row", want)
				}
			}
			t.Log("\n" + Table(rows))
		})
	}
	if len(Scenarios()) != 10 {
		t.Errorf("%d scenarios; the issue has 6, the identity sync 1, the cluster 2 (fenced, failover) and the LDAP connector 1", len(Scenarios()))
	}
}

// tinyRows are scenario labels the tiny sizes must yield: every size of
// the growth rows.
var tinyRows = map[string][]string{
	"full": {
		fmt.Sprintf("full sync, %d users", Tiny().GrowthUsers),
		fmt.Sprintf("full sync, %d users", Tiny().Users),
	},
	"identity": {
		fmt.Sprintf("identity, %d users / %d groups, %s", Tiny().Users, Tiny().Groups, identityPolicies[0].label),
		fmt.Sprintf("identity, %d users / %d groups, %s", Tiny().Users, Tiny().Groups, identityPolicies[1].label),
	},
	"rebuild": {
		"projection rebuild",
		fmt.Sprintf("start to ready, %d events", Tiny().Events[0]),
		fmt.Sprintf("start to ready, %d events", Tiny().Events[len(Tiny().Events)-1]),
	},
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
