package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Limits bound what one client of the TCP API can hold. A request only
// counts once its token is checked and its whole body has arrived: a
// client that sends headers and then trickles (or never sends) its body
// holds a connection for at most BodyTimeout and no share of the work.
type Limits struct {
	// BodyTimeout is how long a request's body may take to arrive once
	// its token has been checked; past it the answer is 408.
	BodyTimeout time.Duration
	// MaxBody is the largest request body accepted (413 beyond).
	MaxBody int64
	// PerClient is how many requests of one client (one API token) may
	// be served at once; more get 429 with Retry-After. 0: no limit.
	PerClient int
}

// DefaultLimits are the TCP API's limits: 5 s for a body of at most
// MaxBodyBytes (the largest request, a sync with its options, is a few
// KiB), and 16 requests at once per token.
var DefaultLimits = Limits{BodyTimeout: 5 * time.Second, MaxBody: MaxBodyBytes, PerClient: 16}

// retryAfter is what a 429 asks the client to wait, in seconds.
const retryAfter = 1

// admission applies Limits to authenticated requests.
type admission struct {
	lim      Limits
	mu       sync.Mutex
	inFlight map[string]int
}

func newAdmission(lim Limits) *admission {
	return &admission{lim: lim, inFlight: map[string]int{}}
}

// serve reads r's body within the limits, takes one of client's slots,
// and calls next; or answers 408, 413 or 429 and closes the connection.
func (a *admission) serve(w http.ResponseWriter, r *http.Request, client string, next http.Handler) {
	if r.Body != nil && r.Body != http.NoBody {
		body, status, err := a.readBody(w, r)
		if err != nil {
			w.Header().Set("Connection", "close")
			writeErr(w, status, err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if !a.take(client) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeErr(w, http.StatusTooManyRequests, fmt.Sprintf("this API token already has %d requests in progress; retry after %d s, or make fewer requests at once",
			a.lim.PerClient, retryAfter))
		return
	}
	defer a.release(client)
	next.ServeHTTP(w, r)
}

// readBody reads the whole body, at most MaxBody bytes, by BodyTimeout.
func (a *admission) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	rc := http.NewResponseController(w)
	if a.lim.BodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(a.lim.BodyTimeout))
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	src := io.Reader(r.Body)
	if a.lim.MaxBody > 0 {
		src = http.MaxBytesReader(w, r.Body, a.lim.MaxBody)
	}
	body, err := io.ReadAll(src)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return body, 0, nil
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, fmt.Errorf("the request body did not arrive within %s of its headers; send it with the request", a.lim.BodyTimeout)
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
}

func (a *admission) take(client string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lim.PerClient > 0 && a.inFlight[client] >= a.lim.PerClient {
		return false
	}
	a.inFlight[client]++
	return true
}

func (a *admission) release(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight[client]--; a.inFlight[client] <= 0 {
		delete(a.inFlight, client)
	}
}
