package azuread

import (
	"encoding/json"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// FuzzDeltaPages feeds arbitrary bytes to the decoding of users/delta and
// groups/delta pages, as the connector decodes and maps them: nothing may
// panic, and every batch sent stays within the contract's size.
func FuzzDeltaPages(f *testing.F) {
	for _, seed := range []string{
		`{"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x","value":[{"id":"u1","mail":"a@contoso.com","displayName":"A","accountEnabled":true,"assignedLicenses":[{"skuId":"s"}]}]}`,
		`{"@odata.deltaLink":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=d","value":[{"id":"u2","@removed":{"reason":"changed"}},{"id":"u3","mail":null,"department":null}]}`,
		`{"value":[{"id":"g1","displayName":"Team","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,"members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u1"},{"@odata.type":"#microsoft.graph.user","id":"u2","@removed":{"reason":"deleted"}},{"@odata.type":"#microsoft.graph.device","id":"d"}]}]}`,
		`{"value":[{"id":"g2","@removed":{"reason":"deleted"}},{"id":"","displayName":"x"}]}`,
		`{"error":{"code":"resyncRequired","message":"Resync required."}}`,
		`{"value":[{"id":"u4","accountEnabled":"yes","assignedLicenses":{}}]}`,
		`{"value":[{"id":"u6","proxyAddresses":["SMTP:a@contoso.com"],"preferredLanguage":null,"onPremisesExtensionAttributes":{"extensionAttribute1":"x"},"manager@delta":[{"@odata.type":"#microsoft.graph.user","id":"m"}]}]}`,
		`{"value":[{"id":"g3","members@delta":[{"@odata.type":"#microsoft.graph.group","id":"g4"},{"id":"g5","@removed":{"reason":"deleted"}}]}]}`,
		`[[[[[[[[[[]]]]]]]]]]`,
		"{\"value\":[{\"id\":\"u5\",\"displayName\":\"\\u0000\\ud800\"}]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		send := func(b *connectorv1.SyncBatch) error {
			n := len(b.GetUsers()) + len(b.GetGroups())
			for _, m := range b.GetMemberships() {
				n += len(m.GetAddedUserIds()) + len(m.GetRemovedUserIds()) + len(m.GetAddedGroupIds()) + len(m.GetRemovedGroupIds())
			}
			if n > connector.MaxBatchObjects {
				t.Fatalf("batch of %d objects", n)
			}
			return nil
		}
		out := newBatcher(send, nil)
		var users deltaPage[graphUser]
		if json.Unmarshal(body, &users) == nil {
			for i := range users.Value {
				if u, err := mapUser(&users.Value[i], wantAttributes(connector.Attributes()), i%2 == 0); err == nil {
					_ = out.user(u)
				}
			}
		}
		var groups deltaPage[graphGroup]
		if json.Unmarshal(body, &groups) == nil {
			gr := &groupRound{kinds: groupKinds{connector.GroupUnified: true, connector.GroupSecurity: true}, seen: map[string]*groupState{}}
			for i := range groups.Value {
				if groups.Value[i].ID != "" {
					_ = gr.add(out, &groups.Value[i])
				}
			}
		}
		_ = out.finish("", true, "")
		_, _ = asExpired(&json.UnsupportedValueError{})
	})
}
