package graphsim

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// RoleMailboxSettingsRead is the application permission that lets an app
// read every user's mailboxSettings. It is not in DefaultRoles, as an app
// registration does not have it unless asked for: grant it with
// Config.Roles or SetRoles. MailboxSettings.ReadWrite allows the read too.
const RoleMailboxSettingsRead = "MailboxSettings.Read"

// mailboxReadRoles are the application permissions that allow
// GET /users/{id}/mailboxSettings
// (https://learn.microsoft.com/graph/api/user-get-mailboxsettings).
var mailboxReadRoles = []string{RoleMailboxSettingsRead, "MailboxSettings.ReadWrite"}

// mailboxProps are the properties of microsoft.graph.mailboxSettings, in
// the order Graph writes them.
var mailboxProps = []string{"archiveFolder", "timeZone", "automaticRepliesSetting", "dateFormat", "timeFormat",
	"delegateMeetingMessageDeliveryOptions", "userPurpose", "language", "workingHours"}

// denyMailbox answers a mailbox request the app has no permission for.
// Exchange-backed endpoints do not answer with the directory's
// Authorization_RequestDenied but with Exchange's ErrorAccessDenied.
func (g *graphReq) denyMailbox() {
	g.fail(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
}

// mailboxUser resolves the user of a mailbox request, answering as
// Exchange does when there is none: 404 ErrorInvalidUser for an unknown
// user, 404 MailboxNotEnabledForRESTAPI for a user without an Exchange
// Online mailbox (no licence, a guest, a mailbox on-premises).
func (g *graphReq) mailboxUser(id string) *User {
	u := g.snap.user(id)
	if u == nil {
		g.fail(http.StatusNotFound, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", id))
		return nil
	}
	if u.MailboxPurpose == "" {
		g.fail(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
		return nil
	}
	return u
}

// getMailboxSettings answers GET /users/{id}/mailboxSettings, with
// $select, in the shape of
// https://learn.microsoft.com/graph/api/user-get-mailboxsettings.
// Only userPurpose and language come from the tenant; the other settings
// are the defaults of a new Exchange Online mailbox.
func (g *graphReq) getMailboxSettings(id string) {
	u := g.mailboxUser(id)
	if u == nil {
		return
	}
	vals, err := url.ParseQuery(g.r.URL.RawQuery)
	if err != nil {
		g.badRequest("The query specified in the URI is not valid. " + err.Error())
		return
	}
	props := mailboxProps
	ctx := g.host + "/v1.0/$metadata#users('" + id + "')/mailboxSettings"
	for k, vs := range vals {
		switch lk := strings.ToLower(strings.TrimSpace(k)); {
		case lk == "$select":
			var msg string
			if props, msg = parseMailboxSelect(strings.Join(vs, ",")); msg != "" {
				g.fail(http.StatusBadRequest, "RequestBroker--ParseUri", msg)
				return
			}
			ctx += "(" + strings.Join(props, ",") + ")"
		case strings.HasPrefix(lk, "$"):
			g.fail(http.StatusBadRequest, "RequestBroker--ParseUri", fmt.Sprintf("Query option '%s' is not supported on mailboxSettings; graphsim supports $select.", k))
			return
		}
	}
	o := jsonObj{b: make([]byte, 0, 1024)}
	o.begin()
	o.str("@odata.context", ctx)
	for _, p := range props {
		writeMailboxProp(&o, u, p)
	}
	o.end()
	g.ok(o.b)
}

// getUserPurpose answers GET /users/{id}/mailboxSettings/userPurpose: a
// single property, wrapped in "value" as OData serves one.
func (g *graphReq) getUserPurpose(id string) {
	u := g.mailboxUser(id)
	if u == nil {
		return
	}
	o := jsonObj{b: make([]byte, 0, 256)}
	o.begin()
	o.str("@odata.context", g.host+"/v1.0/$metadata#users('"+id+"')/mailboxSettings/userPurpose")
	o.str("value", u.MailboxPurpose)
	o.end()
	g.ok(o.b)
}

// parseMailboxSelect resolves $select on mailboxSettings; msg is the
// error.
func parseMailboxSelect(v string) ([]string, string) {
	var out []string
	for _, raw := range strings.Split(v, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		found := ""
		for _, p := range mailboxProps {
			if strings.EqualFold(p, name) {
				found = p
			}
		}
		if found == "" {
			return nil, fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.mailboxSettings'.", name)
		}
		if !containsFold(out, found) {
			out = append(out, found)
		}
	}
	if len(out) == 0 {
		return mailboxProps, ""
	}
	return out, ""
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// writeMailboxProp writes one mailboxSettings property of u.
func writeMailboxProp(o *jsonObj, u *User, name string) {
	locale := u.PreferredLanguage
	if locale == "" {
		locale = "en-US"
	}
	switch name {
	case "archiveFolder":
		o.str(name, "AAMkA"+base64.RawURLEncoding.EncodeToString([]byte(u.ID))[:40]+"AAA=")
	case "timeZone":
		o.str(name, "UTC")
	case "automaticRepliesSetting":
		o.raw(name, `{"status":"disabled","externalAudience":"all","internalReplyMessage":"","externalReplyMessage":"",`+
			`"scheduledStartDateTime":{"dateTime":"2024-01-01T00:00:00.0000000","timeZone":"UTC"},`+
			`"scheduledEndDateTime":{"dateTime":"2024-01-02T00:00:00.0000000","timeZone":"UTC"}}`)
	case "dateFormat":
		o.str(name, "M/d/yyyy")
	case "timeFormat":
		o.str(name, "h:mm tt")
	case "delegateMeetingMessageDeliveryOptions":
		o.str(name, "sendToDelegateOnly")
	case "userPurpose":
		o.str(name, u.MailboxPurpose)
	case "language":
		o.key(name)
		o.b = append(o.b, `{"locale":`...)
		o.b = appendJSONString(o.b, locale)
		o.b = append(o.b, `,"displayName":`...)
		o.b = appendJSONString(o.b, languageName(locale))
		o.b = append(o.b, '}')
	case "workingHours":
		o.raw(name, `{"daysOfWeek":["monday","tuesday","wednesday","thursday","friday"],"startTime":"08:00:00.0000000",`+
			`"endTime":"17:00:00.0000000","timeZone":{"name":"UTC"}}`)
	}
}

// getManager answers GET /users/{id}/manager: the manager as a
// directoryObject with its @odata.type, or 404 Request_ResourceNotFound
// naming 'manager' when the user has none
// (https://learn.microsoft.com/graph/api/user-list-manager).
func (g *graphReq) getManager(id string) {
	u, q := g.lookupUser(id)
	if u == nil {
		return
	}
	var m *User
	if u.ManagerID != "" {
		m = g.snap.user(u.ManagerID)
	}
	if m == nil {
		g.notFound("manager")
		return
	}
	o := jsonObj{b: make([]byte, 0, 1024)}
	g.s.writeUser(&o, m, q.sel, true, g.cf)
	g.ok(withContext(o.b, g.host+"/v1.0/$metadata#directoryObjects/$entity"))
}
