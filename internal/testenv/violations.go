package testenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Violations collects the permissions violations the server reports to a
// connection: a refused publish or request gets no reply, only this.
// Pass Handler as the connection's nats.ErrorHandler.
type Violations struct {
	mu   sync.Mutex
	errs []string
}

// Handler records a permissions violation; other errors are ignored.
func (v *Violations) Handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.errs = append(v.errs, err.Error())
		v.mu.Unlock()
	}
}

// Seen says whether the server refused an operation on subject.
func (v *Violations) Seen(subject string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, fmt.Sprintf("%q", subject)) {
			return nil
		}
	}
	return fmt.Errorf("no permissions violation for %q reported; reported: %v", subject, v.errs)
}

// All returns every violation reported so far.
func (v *Violations) All() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

// Refused runs op until the server reports a permissions violation for
// subject on v's connection, then cancels it (a refused request is never
// answered) and fails t if op succeeded.
func Refused(t testing.TB, v *Violations, subject string, op func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	Eventually(t, 30*time.Second, func() error { return v.Seen(subject) })
	cancel()
	if err := <-done; err == nil {
		t.Errorf("%s: the operation succeeded", subject)
	}
}
