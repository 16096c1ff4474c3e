// Package faulty is a connector plugin that misbehaves on purpose, for
// fault tests of the daemon: as its config's mode says, it exits, crashes,
// hangs, breaks the stream contract or sends hostile data. It reads no
// directory; its users are made up. Never configure it for real use.
//
// In mode ok it serves `users` deterministic users (GUID ids derived from
// their number, mail user<N>@faulty.example) in batches of BatchSize, then a
// final Done batch with Complete set and a cursor. The other modes (see
// Modes) break that at the point `after` says.
package faulty

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Name and Version of the connector, as Describe reports them.
const (
	Name    = "faulty"
	Version = "0.1.0"
)

// Mode is what the connector does wrong.
type Mode string

// The modes. A fault that ends or stops the process happens after `after`
// batches were sent, always before the final one.
const (
	// ModeOK behaves.
	ModeOK Mode = "ok"
	// ModeExitAtStart exits with status 3 as soon as Sync is called,
	// before sending anything.
	ModeExitAtStart Mode = "exit_at_start"
	// ModeCrashMidStream SIGKILLs its own process mid-stream.
	ModeCrashMidStream Mode = "crash_mid_stream"
	// ModeHang blocks forever mid-stream, ignoring its context: a truly
	// hung plugin.
	ModeHang Mode = "hang"
	// ModeAfterDone sends a normal batch after the final (Done) one.
	ModeAfterDone Mode = "after_done"
	// ModeOversized sends one batch of OversizedUsers users.
	ModeOversized Mode = "oversized"
	// ModeRemovedInFull marks user 1 removed in a complete (full) read.
	ModeRemovedInFull Mode = "removed_in_full"
	// ModeBadFields sends users with hostile ids, display names and mails
	// (see BadUsers) before the normal ones.
	ModeBadFields Mode = "bad_fields"
	// ModeTestFail fails TestConnection; Sync behaves.
	ModeTestFail Mode = "test_fail"
)

// Modes returns every mode, in the order of the documentation.
func Modes() []Mode {
	return []Mode{ModeOK, ModeExitAtStart, ModeCrashMidStream, ModeHang, ModeAfterDone,
		ModeOversized, ModeRemovedInFull, ModeBadFields, ModeTestFail}
}

// Config keys and their defaults.
const (
	KeyMode  = "mode"
	KeyUsers = "users"
	KeyAfter = "after"

	DefaultUsers = 50
	DefaultAfter = 1
)

// Sizes of what the connector sends.
const (
	// BatchSize is the number of users per batch.
	BatchSize = 10
	// OversizedUsers is the size of ModeOversized's one batch: far above
	// connector.MaxBatchObjects.
	OversizedUsers = 20 * connector.MaxBatchObjects
	// maxUsers bounds users, so a typo cannot make the plugin build
	// gigabytes of batches.
	maxUsers = 1_000_000
)

// Config is a parsed config block.
type Config struct {
	Mode  Mode
	Users int
	After int
}

// Connector is the faulty connector.
type Connector struct {
	log *zap.Logger
	// die ends or stops the process as mode says (exit_at_start,
	// crash_mid_stream, hang); the real one never returns. Tests replace
	// it to see where the fault would happen.
	die func(Mode)
}

var _ connector.Connector = (*Connector)(nil)

// New returns the connector, logging to log (nil: no logging).
func New(log *zap.Logger) *Connector {
	if log == nil {
		log = zap.NewNop()
	}
	return &Connector{log: log, die: die}
}

// die is the process-ending part of the faults.
func die(m Mode) {
	switch m {
	case ModeExitAtStart:
		os.Exit(3)
	case ModeCrashMidStream:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	select {} // ModeHang, or waiting for the kernel to deliver SIGKILL
}

// Describe implements connector.Connector.
func (c *Connector) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	modes := make([]string, 0, len(Modes()))
	for _, m := range Modes() {
		modes = append(modes, string(m))
	}
	num := connectorv1.ConfigField_TYPE_NUMBER
	return &connectorv1.DescribeResponse{
		Name:        Name,
		Description: "A connector that misbehaves on purpose, for fault tests: it crashes, hangs, breaks the stream contract or sends hostile data. Not for real use.",
		Version:     Version,
		ConfigFields: []*connectorv1.ConfigField{
			{Name: KeyMode, Type: connectorv1.ConfigField_TYPE_STRING, DefaultValue: string(ModeOK),
				Description: "What goes wrong: " + strings.Join(modes, ", ") + "."},
			{Name: KeyUsers, Type: num, DefaultValue: fmt.Sprint(DefaultUsers),
				Description: "How many normal users a sync serves, in batches of 10."},
			{Name: KeyAfter, Type: num, DefaultValue: fmt.Sprint(DefaultAfter),
				Description: "How many batches are sent before a crash or hang."},
		},
	}, nil
}

// ParseConfig decodes and checks a config block; it returns every problem.
func ParseConfig(raw *connectorv1.Config) (*Config, []*connectorv1.ConfigProblem) {
	var problems []*connectorv1.ConfigProblem
	add := func(field, format string, args ...any) {
		problems = append(problems, &connectorv1.ConfigProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	cfg := &Config{Mode: ModeOK, Users: DefaultUsers, After: DefaultAfter}
	values := map[string]json.RawMessage{}
	data := bytes.TrimSpace(raw.GetJson())
	if len(data) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, &values); err != nil {
		add("", "config is not a JSON object: %v", err)
		return nil, problems
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := values[k]
		switch k {
		case KeyMode:
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				add(k, "must be a string")
			} else if !slices.Contains(Modes(), Mode(s)) {
				add(k, "unknown mode %q; the faulty connector's modes are %s", s, modeList())
			} else {
				cfg.Mode = Mode(s)
			}
		case KeyUsers:
			if n, ok := count(v, maxUsers); !ok {
				add(k, "must be a whole number from 0 to %d", maxUsers)
			} else {
				cfg.Users = n
			}
		case KeyAfter:
			if n, ok := count(v, maxUsers); !ok {
				add(k, "must be a whole number from 0 to %d", maxUsers)
			} else {
				cfg.After = n
			}
		default:
			add(k, "unknown key; the faulty connector accepts %s, %s and %s", KeyMode, KeyUsers, KeyAfter)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// count decodes a whole number from 0 to limit.
func count(v json.RawMessage, limit int) (int, bool) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f < 0 || f > float64(limit) || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

func modeList() string {
	names := make([]string, 0, len(Modes()))
	for _, m := range Modes() {
		names = append(names, string(m))
	}
	return strings.Join(names, ", ")
}

// ValidateConfig implements connector.Connector.
func (c *Connector) ValidateConfig(_ context.Context, raw *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	_, problems := ParseConfig(raw)
	return problems, nil
}

// TestConnection implements connector.Connector: one check, failed in
// ModeTestFail and for an invalid config.
func (c *Connector) TestConnection(_ context.Context, raw *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	cfg, problems := ParseConfig(raw)
	switch {
	case problems != nil:
		return &connectorv1.TestConnectionResponse{Checks: []*connectorv1.Check{{Name: "configuration",
			Detail: problems[0].GetField() + ": " + problems[0].GetMessage(), Remedy: "Fix the connector's config block in plugins.hcl.", Code: "invalid_config"}}}, nil
	case cfg.Mode == ModeTestFail:
		return &connectorv1.TestConnectionResponse{Checks: []*connectorv1.Check{{Name: "faulty",
			Detail: "the connection test fails on purpose (mode test_fail)", Remedy: "Set another mode.", Code: "test_fail"}}}, nil
	}
	return &connectorv1.TestConnectionResponse{Ok: true, Checks: []*connectorv1.Check{{Name: "faulty", Ok: true,
		Detail: fmt.Sprintf("mode %s, %d users", cfg.Mode, cfg.Users)}}}, nil
}

// Sync implements connector.Connector: the batches of the mode, each
// passed to send.
func (c *Connector) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	cfg, problems := ParseConfig(req.GetConfig())
	if problems != nil {
		return fmt.Errorf("faulty: invalid config: %s: %s", problems[0].GetField(), problems[0].GetMessage())
	}
	c.log.Info("sync starting", zap.String("mode", string(cfg.Mode)), zap.Int("users", cfg.Users), zap.Int("after", cfg.After), zap.String("job", req.GetJobId()))
	if cfg.Mode == ModeExitAtStart {
		c.die(cfg.Mode)
		return fmt.Errorf("faulty: %s did not stop the process", cfg.Mode)
	}
	batches := Batches(cfg)
	faultAt := min(cfg.After, len(batches)-1) // always before the final batch
	for i, b := range batches {
		if i == faultAt && (cfg.Mode == ModeCrashMidStream || cfg.Mode == ModeHang) {
			c.log.Warn("failing on purpose", zap.String("mode", string(cfg.Mode)), zap.Int("batches_sent", i))
			c.die(cfg.Mode)
			return fmt.Errorf("faulty: %s did not stop the process", cfg.Mode)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}

// Batches returns what a sync of cfg sends, in order: for the modes that
// stop the process, what it would send if it did not.
func Batches(cfg *Config) []*connectorv1.SyncBatch {
	var users []*connectorv1.User
	switch cfg.Mode {
	case ModeOversized:
		users = make([]*connectorv1.User, 0, OversizedUsers)
		for n := 1; n <= OversizedUsers; n++ {
			users = append(users, NewUser(n))
		}
	case ModeBadFields:
		users = append(BadUsers(), normalUsers(cfg.Users)...)
	default:
		users = normalUsers(cfg.Users)
	}
	if cfg.Mode == ModeRemovedInFull && len(users) > 0 {
		users[0].Removed = &connectorv1.Removal{Reason: "deleted"}
	}
	size := BatchSize
	if cfg.Mode == ModeOversized {
		size = len(users)
	}
	var out []*connectorv1.SyncBatch
	for start := 0; start < len(users); start += size {
		chunk := users[start:min(start+size, len(users))]
		out = append(out, &connectorv1.SyncBatch{Users: chunk,
			Progress: &connectorv1.Progress{Phase: "reading users", Users: int64(start + len(chunk))}})
	}
	out = append(out, &connectorv1.SyncBatch{Done: true, Complete: true, Cursor: fmt.Sprintf("faulty-%d", len(users)),
		Progress: &connectorv1.Progress{Phase: "done", Users: int64(len(users))}})
	if cfg.Mode == ModeAfterDone {
		out = append(out, &connectorv1.SyncBatch{Users: []*connectorv1.User{NewUser(cfg.Users + 1)}})
	}
	return out
}

func normalUsers(n int) []*connectorv1.User {
	users := make([]*connectorv1.User, 0, n)
	for i := 1; i <= n; i++ {
		users = append(users, NewUser(i))
	}
	return users
}

// UserID is the GUID of user n.
func UserID(n int) string { return fmt.Sprintf("000fa017-0000-4000-8000-%012x", n) }

// NewUser returns normal user n: an enabled member (not a guest) with a
// GUID id and mail user<n>@faulty.example.
func NewUser(n int) *connectorv1.User {
	mail := fmt.Sprintf("user%d@faulty.example", n)
	return &connectorv1.User{
		Id:                UserID(n),
		UserPrincipalName: &mail,
		Mail:              &mail,
		DisplayName:       ptr(fmt.Sprintf("Faulty User %d", n)),
		// Only connector.v1's neutral fields, as a connector of a
		// directory that is not Entra sends them.
		Enabled: ptr(true),
		Guest:   ptr(false),
	}
}

// BadUsers returns ModeBadFields' hostile users: ids that are not GUIDs or
// hold NATS subject wildcards, separators or spaces; display names with
// control characters, CR/LF and a bidi override; mails that are header
// injections, no address, or an address with a display name. Every other
// field is normal.
//
// Invalid UTF-8 is not among them: protobuf refuses to marshal it in a
// string field, so no plugin can send it to the daemon.
func BadUsers() []*connectorv1.User {
	var users []*connectorv1.User
	for _, id := range []string{
		"not-a-guid",
		"000fa017-0000-4000-8000-00000000000.",
		"000fa017-0000-4000-8000-00000000000*",
		"000fa017-0000-4000-8000-00000000000>",
		"000fa017 0000 4000 8000 000000000001",
	} {
		u := NewUser(0)
		u.Id = id
		u.Mail = ptr(fmt.Sprintf("bad-id-%d@faulty.example", len(users)+1))
		u.UserPrincipalName = u.Mail
		users = append(users, u)
	}
	bad := func(k int) *connectorv1.User {
		u := NewUser(0)
		u.Id = fmt.Sprintf("0000bad0-0000-4000-8000-%012x", k)
		u.Mail = ptr(fmt.Sprintf("bad-%d@faulty.example", k))
		u.UserPrincipalName = u.Mail
		return u
	}
	for k, name := range []string{
		"Bell\x07Ringer\x00",
		"Line\r\nBreak",
		"Tab\tand\x1b[31mEscape",
		"\u202Egnp.exe",
	} {
		u := bad(k + 1)
		u.DisplayName = ptr(name)
		users = append(users, u)
	}
	for k, mail := range []string{
		"a@b.example\r\nBcc: x@evil.example",
		"not-an-address",
		"Eve <eve@evil.example>",
	} {
		u := bad(k + 10)
		u.Mail = ptr(mail)
		users = append(users, u)
	}
	return users
}

func ptr[T any](v T) *T { return &v }
