package graphsim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The admin endpoints change a running graphsim from outside (the
// graphsim command's subcommands use them). They live under /_graphsim/
// on the same listener, answer JSON, and require
// "Authorization: Bearer <the client secret>".
//
//	GET    /_graphsim/status                     tenant size, version, settings
//	POST   /_graphsim/churn?n=10&seed=3          Churn; {"changes":[...]}
//	POST   /_graphsim/users                      AddUser (body: a user, Graph property names)
//	PATCH  /_graphsim/users/{id}                 UpdateUser (body: the properties to change)
//	POST   /_graphsim/users/{id}/disable         DisableUser (also enable)
//	POST   /_graphsim/users/{id}/delete[?permanent=true]
//	POST   /_graphsim/users/{id}/restore
//	POST   /_graphsim/users/{id}/licenses        SetLicenses (body {"skuIds":[...]} or ?sku=...&sku=...)
//	POST   /_graphsim/groups/{id}/members/add    AddMembers (body {"ids":[...]} or ?id=...&id=...)
//	POST   /_graphsim/groups/{id}/members/remove RemoveMembers
//	GET    /_graphsim/faults                     Faults
//	POST   /_graphsim/faults                     SetFaults (body: Faults as JSON)
//	POST   /_graphsim/expire-delta?mode=gone     ExpireDeltaTokens
//	GET    /_graphsim/counters                   {"requests":N,"counters":{...}}
//	DELETE /_graphsim/counters                   ResetCounters
//	GET    /_graphsim/settings                   token lifetime and delta token TTL
//	POST   /_graphsim/settings                   SetTokenLifetime, SetDeltaTokenTTL (body {"tokenLifetime":"10s","deltaTokenTTL":"1m"})

// userJSON is a user as the admin endpoints read and write it, with
// Graph's property names.
type userJSON struct {
	ID                string   `json:"id,omitempty"`
	UserPrincipalName string   `json:"userPrincipalName,omitempty"`
	Mail              string   `json:"mail,omitempty"`
	DisplayName       string   `json:"displayName,omitempty"`
	GivenName         string   `json:"givenName,omitempty"`
	Surname           string   `json:"surname,omitempty"`
	Department        string   `json:"department,omitempty"`
	JobTitle          string   `json:"jobTitle,omitempty"`
	UserType          string   `json:"userType,omitempty"`
	AccountEnabled    *bool    `json:"accountEnabled,omitempty"`
	AssignedLicenses  []string `json:"assignedLicenses,omitempty"` // skuIds
}

func userToJSON(u User) userJSON {
	enabled := u.AccountEnabled
	return userJSON{u.ID, u.UserPrincipalName, u.Mail, u.DisplayName, u.GivenName, u.Surname, u.Department,
		u.JobTitle, u.UserType, &enabled, u.AssignedLicenses}
}

// patchUser applies the body of PATCH /_graphsim/users/{id} to u: the
// properties present change, null clears a string. It returns the first
// problem with the body.
func patchUser(body map[string]json.RawMessage, u *User) error {
	strs := map[string]*string{"userPrincipalName": &u.UserPrincipalName, "mail": &u.Mail, "displayName": &u.DisplayName,
		"givenName": &u.GivenName, "surname": &u.Surname, "department": &u.Department, "jobTitle": &u.JobTitle, "userType": &u.UserType}
	for _, k := range sortedKeys(body) {
		raw := body[k]
		null := string(raw) == "null"
		var err error
		switch dst := strs[k]; {
		case dst != nil && null:
			*dst = ""
		case dst != nil:
			err = json.Unmarshal(raw, dst)
		case k == "accountEnabled":
			err = json.Unmarshal(raw, &u.AccountEnabled)
		case k == "assignedLicenses":
			u.AssignedLicenses = nil
			if !null {
				err = json.Unmarshal(raw, &u.AssignedLicenses)
			}
		default:
			return fmt.Errorf("unknown or read-only property %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", k, err)
		}
	}
	return nil
}

// statusJSON is the answer of GET /_graphsim/status.
type statusJSON struct {
	Tenant        string `json:"tenant"`
	TenantID      string `json:"tenantId"`
	Users         int    `json:"users"`
	Groups        int    `json:"groups"`
	DeletedUsers  int    `json:"deletedUsers"`
	Version       uint64 `json:"version"`
	Requests      int64  `json:"requests"`
	Faults        Faults `json:"faults"`
	TokenLifetime string `json:"tokenLifetime"`
	DeltaTokenTTL string `json:"deltaTokenTTL"`
}

// settingsJSON is the body of /_graphsim/settings.
type settingsJSON struct {
	TokenLifetime string `json:"tokenLifetime,omitempty"`
	DeltaTokenTTL string `json:"deltaTokenTTL,omitempty"`
}

// adminError is an error answer: {"error":"..."}.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

func adminErr(status int, format string, args ...any) error {
	return &adminError{status, fmt.Sprintf(format, args...)}
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// serveAdmin answers the /_graphsim/ endpoints.
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(s.cfg.ClientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="graphsim admin"`)
		writeAdminJSON(w, http.StatusUnauthorized, map[string]string{"error": "the admin endpoints need Authorization: Bearer <the client secret>"})
		return
	}
	v, err := s.admin(r)
	if err != nil {
		status := http.StatusBadRequest
		var ae *adminError
		if errors.As(err, &ae) {
			status = ae.status
		} else if strings.Contains(err.Error(), "no user with ID") || strings.Contains(err.Error(), "no group with ID") ||
			strings.Contains(err.Error(), "no deleted user") {
			status = http.StatusNotFound
		}
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST, PATCH, DELETE")
		}
		writeAdminJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeAdminJSON(w, http.StatusOK, v)
}

// admin performs one admin request and returns what to answer.
func (s *Sim) admin(r *http.Request) (any, error) {
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_graphsim"), "/"), "/")
	q := r.URL.Query()
	route := r.Method + " " + seg[0]
	want := func(methods ...string) error {
		for _, m := range methods {
			if r.Method == m {
				return nil
			}
		}
		return adminErr(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
	}
	switch {
	case seg[0] == "" || seg[0] == "status":
		if err := want(http.MethodGet); err != nil {
			return nil, err
		}
		return s.status(), nil
	case seg[0] == "churn" && len(seg) == 1:
		if err := want(http.MethodPost); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil {
			return nil, adminErr(http.StatusBadRequest, "churn needs n, a number of changes: %v", err)
		}
		var seed int64
		if v := q.Get("seed"); v != "" {
			if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, adminErr(http.StatusBadRequest, "seed: %v", err)
			}
		}
		changes, err := s.Churn(n, seed)
		if err != nil {
			return nil, err
		}
		return map[string]any{"changes": changes, "version": s.Version()}, nil
	case seg[0] == "users":
		return s.adminUsers(r, seg[1:])
	case seg[0] == "groups" && len(seg) == 4 && seg[2] == "members":
		if err := want(http.MethodPost); err != nil {
			return nil, err
		}
		var body struct {
			IDs []string `json:"ids"`
		}
		if err := readJSON(r, &body, true); err != nil {
			return nil, err
		}
		ids := append(body.IDs, q["id"]...)
		if len(ids) == 0 {
			return nil, adminErr(http.StatusBadRequest, "no member IDs: send {\"ids\":[...]} or ?id=...")
		}
		var err error
		switch seg[3] {
		case "add":
			err = s.AddMembers(seg[1], ids...)
		case "remove":
			err = s.RemoveMembers(seg[1], ids...)
		default:
			return nil, adminErr(http.StatusNotFound, "no admin endpoint %s", r.URL.Path)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"group": seg[1], seg[3]: ids, "version": s.Version()}, nil
	case seg[0] == "faults" && len(seg) == 1:
		if err := want(http.MethodGet, http.MethodPost, http.MethodPut); err != nil {
			return nil, err
		}
		if r.Method != http.MethodGet {
			var f Faults
			if err := readJSON(r, &f, false); err != nil {
				return nil, err
			}
			if err := f.validate(); err != nil {
				return nil, adminErr(http.StatusBadRequest, "%v", err)
			}
			s.SetFaults(f)
		}
		return s.Faults(), nil
	case seg[0] == "expire-delta" && len(seg) == 1:
		if err := want(http.MethodPost); err != nil {
			return nil, err
		}
		mode := ExpiryGone
		if v := q.Get("mode"); v != "" {
			m, err := ParseExpiryMode(v)
			if err != nil {
				return nil, adminErr(http.StatusBadRequest, "%v", err)
			}
			mode = m
		}
		if err := s.ExpireDeltaTokensSaved(mode); err != nil {
			return nil, err
		}
		return map[string]any{"expired": true, "mode": mode}, nil
	case seg[0] == "counters" && len(seg) == 1:
		if err := want(http.MethodGet, http.MethodDelete); err != nil {
			return nil, err
		}
		if r.Method == http.MethodDelete {
			s.ResetCounters()
		}
		return map[string]any{"requests": s.Requests(), "counters": s.Counters()}, nil
	case seg[0] == "settings" && len(seg) == 1:
		if err := want(http.MethodGet, http.MethodPost, http.MethodPut); err != nil {
			return nil, err
		}
		if r.Method != http.MethodGet {
			var body settingsJSON
			if err := readJSON(r, &body, false); err != nil {
				return nil, err
			}
			var lifetime, ttl time.Duration
			var err error
			if body.TokenLifetime != "" {
				if lifetime, err = time.ParseDuration(body.TokenLifetime); err != nil || lifetime <= 0 {
					return nil, adminErr(http.StatusBadRequest, "tokenLifetime %q is not a positive duration", body.TokenLifetime)
				}
			}
			if body.DeltaTokenTTL != "" {
				if ttl, err = time.ParseDuration(body.DeltaTokenTTL); err != nil || ttl < 0 {
					return nil, adminErr(http.StatusBadRequest, "deltaTokenTTL %q is not a duration >= 0", body.DeltaTokenTTL)
				}
			}
			if body.TokenLifetime != "" {
				s.SetTokenLifetime(lifetime)
			}
			if body.DeltaTokenTTL != "" {
				s.SetDeltaTokenTTL(ttl)
			}
		}
		return settingsJSON{TokenLifetime: s.TokenLifetime().String(), DeltaTokenTTL: s.DeltaTokenTTL().String()}, nil
	}
	return nil, adminErr(http.StatusNotFound, "no admin endpoint %s", route)
}

func (s *Sim) status() statusJSON {
	snap := s.cur.Load()
	return statusJSON{
		Tenant: snap.tenant.Domain, TenantID: snap.tenant.ID, Users: len(snap.tenant.Users), Groups: len(snap.tenant.Groups),
		DeletedUsers: len(snap.deleted), Version: snap.ver, Requests: s.Requests(), Faults: s.Faults(),
		TokenLifetime: s.TokenLifetime().String(), DeltaTokenTTL: s.DeltaTokenTTL().String(),
	}
}

// adminUsers answers /_graphsim/users/...; seg follows "users".
func (s *Sim) adminUsers(r *http.Request, seg []string) (any, error) {
	q := r.URL.Query()
	switch {
	case len(seg) == 0 || len(seg) == 1 && seg[0] == "":
		if r.Method != http.MethodPost {
			return nil, adminErr(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
		}
		var in userJSON
		if err := readJSON(r, &in, false); err != nil {
			return nil, err
		}
		u := User{ID: in.ID, UserPrincipalName: in.UserPrincipalName, Mail: in.Mail, DisplayName: in.DisplayName,
			GivenName: in.GivenName, Surname: in.Surname, Department: in.Department, JobTitle: in.JobTitle,
			UserType: in.UserType, AccountEnabled: in.AccountEnabled == nil || *in.AccountEnabled, AssignedLicenses: in.AssignedLicenses}
		added, err := s.AddUser(u)
		if err != nil {
			return nil, err
		}
		return userToJSON(added), nil
	case len(seg) == 1:
		if r.Method != http.MethodPatch {
			return nil, adminErr(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
		}
		var body map[string]json.RawMessage
		if err := readJSON(r, &body, false); err != nil {
			return nil, err
		}
		var scratch User // check the body before changing anything
		if err := patchUser(body, &scratch); err != nil {
			return nil, adminErr(http.StatusBadRequest, "%v", err)
		}
		err := s.UpdateUser(seg[0], func(u *User) { _ = patchUser(body, u) })
		if err != nil {
			return nil, err
		}
		return s.adminUser(seg[0])
	case len(seg) == 2:
		if r.Method != http.MethodPost {
			return nil, adminErr(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
		}
		id := seg[0]
		var err error
		switch seg[1] {
		case "disable":
			err = s.DisableUser(id)
		case "enable":
			err = s.EnableUser(id)
		case "delete":
			permanent := false
			if v := q.Get("permanent"); v != "" {
				p, perr := strconv.ParseBool(v)
				if perr != nil {
					return nil, adminErr(http.StatusBadRequest, "permanent must be true or false, not %q", v)
				}
				permanent = p
			}
			if err := s.DeleteUser(id, permanent); err != nil {
				return nil, err
			}
			return map[string]any{"deleted": id, "permanent": permanent, "version": s.Version()}, nil
		case "restore":
			err = s.RestoreUser(id)
		case "licenses":
			var body struct {
				SkuIDs []string `json:"skuIds"`
			}
			if err := readJSON(r, &body, true); err != nil {
				return nil, err
			}
			err = s.SetLicenses(id, append(body.SkuIDs, q["sku"]...))
		default:
			return nil, adminErr(http.StatusNotFound, "no admin endpoint %s", r.URL.Path)
		}
		if err != nil {
			return nil, err
		}
		return s.adminUser(id)
	}
	return nil, adminErr(http.StatusNotFound, "no admin endpoint %s", r.URL.Path)
}

// adminUser returns a live user as JSON.
func (s *Sim) adminUser(id string) (any, error) {
	u := s.cur.Load().user(id)
	if u == nil {
		return nil, adminErr(http.StatusNotFound, "no user with ID %q", id)
	}
	return userToJSON(*u), nil
}

// readJSON decodes the request body into v; an empty body is allowed when
// optional.
func readJSON(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return adminErr(http.StatusBadRequest, "read body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if optional {
			return nil
		}
		return adminErr(http.StatusBadRequest, "the request needs a JSON body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return adminErr(http.StatusBadRequest, "the body is not valid JSON for this request: %v", err)
	}
	return nil
}
