package azuread

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

func TestBatcherBounds(t *testing.T) {
	var got []*connectorv1.SyncBatch
	b := newBatcher(func(sb *connectorv1.SyncBatch) error { got = append(got, sb); return nil }, &stats{})
	max := connector.MaxBatchObjects
	for i := 0; i < max+1; i++ {
		if err := b.user(&connectorv1.User{Id: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.group(&connectorv1.Group{Id: "g1"}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 2*max+5)
	for i := range ids {
		ids[i] = fmt.Sprint("m", i)
	}
	if err := b.members("g1", memberChanges{addedUsers: ids, removedUsers: []string{"r1", "r2"}, addedGroups: ids[:max], removedGroups: []string{"r3"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.finish("", true, ""); err != nil {
		t.Fatal(err)
	}
	users, groups, members, removed, groupMembers, groupsRemoved := 0, 0, 0, 0, 0, 0
	for i, sb := range got {
		n := len(sb.GetUsers()) + len(sb.GetGroups())
		for _, m := range sb.GetMemberships() {
			n += len(m.GetAddedUserIds()) + len(m.GetRemovedUserIds()) + len(m.GetAddedGroupIds()) + len(m.GetRemovedGroupIds())
			members += len(m.GetAddedUserIds())
			removed += len(m.GetRemovedUserIds())
			groupMembers += len(m.GetAddedGroupIds())
			groupsRemoved += len(m.GetRemovedGroupIds())
		}
		if n > max {
			t.Errorf("batch %d holds %d objects", i, n)
		}
		if sb.GetDone() != (i == len(got)-1) {
			t.Errorf("batch %d done=%v", i, sb.GetDone())
		}
		users += len(sb.GetUsers())
		groups += len(sb.GetGroups())
	}
	last := got[len(got)-1]
	if !last.GetComplete() || last.GetCursor() != "" {
		t.Error("last batch not complete")
	}
	if users != max+1 || groups != 1 || members != len(ids) || removed != 2 || groupMembers != max || groupsRemoved != 1 {
		t.Errorf("users %d groups %d members %d removed %d group members %d removed %d", users, groups, members, removed, groupMembers, groupsRemoved)
	}
	if p := last.GetProgress(); p.GetUsers() != int64(users) || p.GetMemberships() != int64(members+removed+groupMembers+groupsRemoved) {
		t.Errorf("progress %v", p)
	}

	// An empty directory still ends with one done batch.
	got = nil
	b = newBatcher(func(sb *connectorv1.SyncBatch) error { got = append(got, sb); return nil }, nil)
	if err := b.finish("", true, ""); err != nil || len(got) != 1 || !got[0].GetDone() {
		t.Fatalf("empty: %v %v", got, err)
	}

	// A failing send is passed on.
	boom := errors.New("boom")
	b = newBatcher(func(*connectorv1.SyncBatch) error { return boom }, nil)
	if err := b.finish("", true, ""); !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
}

func entraError(status int, body string) error {
	return &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: status,
		Status:     http.StatusText(status),
		Body:       io.NopCloser(bytes.NewBufferString(body)),
	}}
}

func TestExplainEntraErrors(t *testing.T) {
	cfg := &Config{Tenant: "contoso.onmicrosoft.com", ClientID: testClientID, AuthorityHost: DefaultAuthorityHost, GraphURL: DefaultGraphURL}
	const secretID = "5f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	tests := []struct {
		body   string
		secret string
		code   string
		remedy string
	}{
		{`{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant 'x' not found.\r\nTrace ID: 1","error_codes":[90002]}`, "s", CodeTenantNotFound, "primary domain"},
		{`{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found","error_codes":[700016]}`, "s", CodeClientIDNotFound, "Application (client) ID"},
		{`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`, "wrong-secret", CodeInvalidClientSecret, "Value"},
		{`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`, secretID, CodeInvalidClientSecret, "looks like a Secret ID"},
		{`{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired.","error_codes":[7000222]}`, "s", CodeClientSecretExpired, "new client secret"},
		{`{"error":"invalid_scope","error_description":"AADSTS70011: The provided value for the input parameter 'scope' is not valid."}`, "s", CodeInvalidScope, "graph_url"},
		{`{"error":"invalid_request","error_description":"AADSTS12345: Something."}`, "s", CodeAuthenticationFailed, "AADSTS"},
	}
	for _, tt := range tests {
		p := explain(entraError(400, tt.body), stageToken, cfg, tt.secret)
		if p.Code != tt.code || !strings.Contains(p.Remedy, tt.remedy) {
			t.Errorf("%s: got %s %q / %q", tt.body, p.Code, p.Detail, p.Remedy)
		}
		if strings.Contains(p.Detail, "Trace ID") {
			t.Errorf("detail keeps more than the first line: %q", p.Detail)
		}
	}
	// Text only (no response): the AADSTS code in the message still counts.
	p := explain(fmt.Errorf("wrapped: %w", errors.New("ClientSecretCredential: AADSTS7000222: expired")), stageToken, cfg, "s")
	if p.Code != CodeClientSecretExpired {
		t.Errorf("text-only: %v", p)
	}
	// Transport errors.
	p = explain(errors.New("ClientSecretCredential: server response error:\n Post \"https://x/\": tls: failed to verify certificate: x509: certificate signed by unknown authority"), stageToken, cfg, "s")
	if p.Code != CodeTLSUntrusted || !strings.Contains(p.Remedy, "ca_file") || !strings.Contains(p.Detail, "login.microsoftonline.com") {
		t.Errorf("tls: %v", p)
	}
	p = explain(errors.New("Get \"https://graph.microsoft.com/v1.0/users\": dial tcp: lookup graph.microsoft.com: no such host"), stageUsers, cfg, "s")
	if p.Code != CodeUnreachable || !strings.Contains(p.Detail, "graph.microsoft.com") {
		t.Errorf("dns: %v", p)
	}
	// The secret is redacted from anything an error says.
	p = explain(errors.New("weird failure mentioning hunter2-secret"), stageUsers, cfg, "hunter2-secret")
	if strings.Contains(p.Error(), "hunter2-secret") {
		t.Errorf("secret not redacted: %v", p)
	}
}

func TestTokenRoles(t *testing.T) {
	tok := "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJVc2VyLlJlYWQuQWxsIiwiR3JvdXBNZW1iZXIuUmVhZC5BbGwiXX0.sig"
	if got := strings.Join(tokenRoles(tok), ","); got != "GroupMember.Read.All,User.Read.All" {
		t.Errorf("roles %q", got)
	}
	if tokenRoles("opaque") != nil {
		t.Error("opaque token has roles")
	}
}

// A Problem reads as two sentences, the detail then the remedy, whatever
// the detail ends with.
func TestProblemError(t *testing.T) {
	cfg := &Config{Tenant: "contoso.onmicrosoft.com", ClientID: testClientID, AuthorityHost: DefaultAuthorityHost, GraphURL: DefaultGraphURL}
	tooLarge := &ResponseLimitError{Request: "GET https://graph.example/v1.0/users/delta", MaxBytes: 16 * mib}
	tests := []struct {
		name string
		p    *Problem
		want string
	}{
		{"response too large", explain(tooLarge, stageUsers, cfg, "s"),
			"the answer to GET https://graph.example/v1.0/users/delta is larger than 16 MiB (max_response_mb); the connector stopped reading it. " +
				"To fix: Graph's pages are normally about 1 MiB. If this tenant's really are larger, raise max_response_mb in the connector's config block (now 16 MiB, at most 1024 MiB); " +
				"if not, check that graph_url points at Microsoft's service and that no proxy in between rewrites its answers. Nothing was changed: the next sync starts again from the last good cursor."},
		{"detail in parentheses", explain(entraError(401, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired.","error_codes":[7000222]}`), stageToken, cfg, "s"),
			"the client secret has expired (Entra 401 invalid_client: AADSTS7000222: The provided client secret keys are expired.). " +
				"To fix: Create a new client secret under the app registration's Certificates & secrets and put its Value in client_secret or client_secret_file."},
		{"detail ending a sentence", &Problem{Detail: "Graph said no. ", Remedy: "Ask again."}, "Graph said no. To fix: Ask again."},
		{"no remedy", &Problem{Detail: "Graph 500 generalException: boom"}, "Graph 500 generalException: boom"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
