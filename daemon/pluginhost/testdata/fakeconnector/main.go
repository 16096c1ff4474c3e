// Command fakeconnector is a trivial connector plugin for pluginhost's
// tests. At start it writes its pid to <argv[0]>.started, so a test can
// tell whether it ran. Its behaviour depends on its file name: one ending
// in "-baddescribe" fails Describe.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

type fake struct {
	log  *zap.Logger
	self string
}

func (f *fake) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	f.log.Info("describe called", zap.String("answer", "fake"), zap.Int("fields", 1))
	f.log.Debug("describe detail")
	if strings.HasSuffix(f.self, "-baddescribe") {
		f.log.Error("refusing to describe")
		return nil, errors.New("fake: describe is broken")
	}
	return &connectorv1.DescribeResponse{
		Name:    "fake",
		Version: "0.0.1",
		ConfigFields: []*connectorv1.ConfigField{
			{Name: "batches", Type: connectorv1.ConfigField_TYPE_NUMBER},
		},
	}, nil
}

func (f *fake) ValidateConfig(context.Context, *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	return nil, nil
}

// TestConnection reports the environment it sees: one check per variable,
// named by the variable, its value as the detail.
func (f *fake) TestConnection(context.Context, *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	env := os.Environ()
	sort.Strings(env)
	resp := &connectorv1.TestConnectionResponse{Ok: true}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		resp.Checks = append(resp.Checks, &connectorv1.Check{Name: k, Ok: true, Detail: v})
	}
	return resp, nil
}

// Sync sends config.batches batches of one user each, the last done.
func (f *fake) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	var cfg struct {
		Batches int `json:"batches"`
	}
	if err := json.Unmarshal(req.GetConfig().GetJson(), &cfg); err != nil {
		return fmt.Errorf("fake: config: %w", err)
	}
	f.log.Warn("sync starting", zap.Int("batches", cfg.Batches), zap.String("job", req.GetJobId()))
	for i := 1; i <= cfg.Batches; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := &connectorv1.SyncBatch{
			Users:    []*connectorv1.User{{Id: "user-" + strconv.Itoa(i)}},
			Progress: &connectorv1.Progress{Phase: "reading users", Users: int64(i)},
		}
		if i == cfg.Batches {
			b.Done, b.Complete, b.Cursor = true, true, "cursor-"+req.GetCursor()+"+1"
		}
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	// argv[0], not os.Executable: a pinned plugin runs from an in-memory
	// copy, and the host passes the binary's path as argv[0].
	self := os.Args[0]
	if err := os.WriteFile(self+".started", []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := connector.NewPluginLogger(zapcore.DebugLevel)
	log.Info("fake connector starting", zap.Int("pid", os.Getpid()))
	connector.Serve(&fake{log: log, self: self})
}
