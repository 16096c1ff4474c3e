package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawRequest sends head (request line and headers, without the blank
// line) and then body, and returns the status line of the answer and
// whether the server closed the connection after it.
func rawRequest(t *testing.T, addr, head, body string) (status string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, head+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status, resp.Close
}

// The token is checked on the headers: a request without one is refused
// at once and its connection closed, whatever body it announced; an
// accepted request has BodyTimeout for its body (408 after) and at most
// MaxBody bytes (413).
func TestAuthenticatedWithBodyLimits(t *testing.T) {
	const token = "limits-token-0123456789"
	s, _ := newTestServer(t)
	lim := Limits{BodyTimeout: 300 * time.Millisecond, MaxBody: 1 << 10, PerClient: 4}
	srv := httptest.NewServer(s.AuthenticatedWith(func() []Token { return []Token{NewToken([]byte(token), time.Time{})} }, time.Now, lim))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	post := func(auth string, length int) string {
		h := fmt.Sprintf("POST /v1/connectors/demo/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d", length)
		if auth != "" {
			h += "\r\nAuthorization: Bearer " + auth
		}
		return h
	}
	tests := []struct {
		name      string
		head      string
		body      string
		status    string
		wantClose bool
	}{
		{"no token, body never sent", post("", 60000), "", "401 Unauthorized", true},
		{"wrong token, body never sent", post("WrongTokenValue-1234567890", 60000), "", "401 Unauthorized", true},
		{"token, body never sent", post(token, 60000), "", "408 Request Timeout", true},
		{"token, body half sent", post(token, 100), `{"full":`, "408 Request Timeout", true},
		{"token, body too large", post(token, 2000), strings.Repeat(" ", 2000), "413 Request Entity Too Large", true},
		{"token, body complete", post(token, 2), "{}", "202 Accepted", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, closed := rawRequest(t, addr, tt.head, tt.body)
			if status != tt.status || closed != tt.wantClose {
				t.Errorf("answer %q (connection closed: %v); want %q (closed: %v)", status, closed, tt.status, tt.wantClose)
			}
		})
	}
}

// One token may have PerClient requests in progress; the next gets 429
// with Retry-After, and a slot frees when a request ends.
func TestAdmissionPerClient(t *testing.T) {
	adm := newAdmission(Limits{PerClient: 2})
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})
	serve := func(client string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		adm.serve(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil), client, slow)
		return rec
	}
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- serve("a").Code }()
	}
	<-entered
	<-entered
	if rec := serve("a"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("third request of a client: %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	// Another client is not held back by the first one's requests.
	go func() { done <- serve("b").Code }()
	<-entered
	close(release)
	for range 3 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("request within the limit: %d", code)
		}
	}
	if rec := serve("a"); rec.Code != http.StatusOK {
		t.Errorf("after the requests ended: %d; want 200", rec.Code)
	}
}
