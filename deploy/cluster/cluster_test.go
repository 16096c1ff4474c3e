package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/daemon/config"
)

// The three server configurations parse as nats-server reads them, once
// accounts.conf has public keys in place of its placeholders, and keep
// what README.md and docs/durability.md say they do.
func TestClusterConfigs(t *testing.T) {
	dir := t.TempDir()
	accounts, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	// A key per placeholder, remembered by the user it stands for.
	keys := map[string]string{}
	filled := regexp.MustCompile(`"REPLACE-with-the-public-key-of-([a-z-]+)"`).ReplaceAllStringFunc(string(accounts), func(m string) string {
		name := strings.TrimSuffix(strings.TrimPrefix(m, `"REPLACE-with-the-public-key-of-`), `"`)
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = pub
		return `"` + pub + `"`
	})
	for _, name := range []string{"appliance-a", "appliance-b", "appliance-c", "a-downstream-service", "the-operator"} {
		if keys[name] == "" {
			t.Errorf("accounts.conf has no placeholder for %s (README.md, step 2, names it)", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), []byte(filled), 0o644); err != nil {
		t.Fatal(err)
	}

	for i, name := range []string{"nats-1", "nats-2", "nats-3"} {
		b, err := os.ReadFile(name + ".conf")
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, b, 0o644); err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s.conf: %v", name, err)
		}
		if o.ServerName != name {
			t.Errorf("%s.conf: server_name %q", name, o.ServerName)
		}
		if !o.JetStream || !o.SyncAlways {
			t.Errorf("%s.conf: jetstream %v, sync_interval always %v: want both", name, o.JetStream, o.SyncAlways)
		}
		if o.MaxPayload < 1<<20 {
			t.Errorf("%s.conf: max_payload %d is below the 1 MiB dirsync's events may take", name, o.MaxPayload)
		}
		if o.Port != 4222 || o.Cluster.Port != 6222 || o.Cluster.Name != "dirsync" || len(o.Routes) != 3 {
			t.Errorf("%s.conf: client port %d, cluster %q on %d with %d routes; want 4222, \"dirsync\" on 6222 with 3", name, o.Port, o.Cluster.Name, o.Cluster.Port, len(o.Routes))
		}
		if o.SystemAccount != "SYS" {
			t.Errorf("%s.conf: system_account %q", name, o.SystemAccount)
		}
		if i > 0 {
			continue
		}
		users := map[string]*server.NkeyUser{}
		for _, u := range o.Nkeys {
			users[u.Nkey] = u
		}
		for _, r := range []string{"appliance-a", "appliance-b", "appliance-c"} {
			u := users[keys[r]]
			if u == nil || u.Account == nil || u.Account.Name != "DIRSYNC" || u.Permissions != nil {
				t.Errorf("replica %s: want a user of account DIRSYNC without restrictions, as dirsyncd has with the embedded server; got %+v", r, u)
			}
		}
		c := users[keys["a-downstream-service"]]
		if c == nil || c.Account == nil || c.Account.Name != "DIRSYNC" {
			t.Fatalf("the downstream service: want a user of account DIRSYNC, got %+v", c)
		}
		if want := broker.ConsumerPermissions(); !reflect.DeepEqual(c.Permissions, want) {
			t.Errorf("the downstream service's permissions in accounts.conf differ from the embedded server's consumer credential "+
				"(daemon/broker ConsumerPermissions, as docs/events.md shows them):\n got %s\nwant %s", describe(c.Permissions), describe(want))
		}
		if op := users[keys["the-operator"]]; op == nil || op.Account == nil || op.Account.Name != "SYS" {
			t.Errorf("the operator: want a user of the system account SYS, got %+v", op)
		}
	}
}

// describe renders subject permissions for a failure message.
func describe(p *server.Permissions) string {
	if p == nil {
		return "none (may do anything)"
	}
	lists := func(name string, sp *server.SubjectPermission) string {
		if sp == nil {
			return name + ": -"
		}
		return name + ": allow [" + strings.Join(sp.Allow, " ") + "] deny [" + strings.Join(sp.Deny, " ") + "]"
	}
	return lists("publish", p.Publish) + "; " + lists("subscribe", p.Subscribe) + "; response: " + fmt.Sprint(p.Response)
}

// A replica's plugins.hcl.example is a valid configuration for a replica
// of the three-node cluster.
func TestReplicaConfigExample(t *testing.T) {
	src, err := os.ReadFile("plugins.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(src, "plugins.hcl.example")
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.NATS
	if n.Embedded() || n.Replicas != 3 || n.NkeyFile == "" || strings.Count(n.URL, "nats://") != 3 {
		t.Errorf("nats block: url %q, replicas %d, nkey_file %q; want the three nodes, 3 and a seed file", n.URL, n.Replicas, n.NkeyFile)
	}
	for i := 1; i <= 3; i++ {
		if host := fmt.Sprintf("nats-%d.example.internal:4222", i); !strings.Contains(n.URL, host) {
			t.Errorf("nats url %q does not name %s (nats-%d.conf's route host)", n.URL, host, i)
		}
	}
	if cfg.Daemon.Replica != "appliance-a" || cfg.Daemon.LeaseTTL != config.DefaultLeaseTTL {
		t.Errorf("daemon block: replica %q, lease_ttl %s", cfg.Daemon.Replica, cfg.Daemon.LeaseTTL)
	}
}
