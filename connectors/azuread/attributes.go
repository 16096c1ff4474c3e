package azuread

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/connectors/connector"
)

// User attributes.
//
// connector.Attributes are Graph's user property names, so most map to
// themselves. Two do not: Exchange's extensionAttribute1-15 live in one
// complex property, onPremisesExtensionAttributes, selected whole when
// any of them is asked for; and manager is a navigation property, which
// users/delta answers as manager@delta (a list of directory object
// references, the manager's last, an entry with @removed when it was
// taken away) when $select names it.
//
// Only the attributes a sync asks for are selected: each is Graph bytes
// on every user of every full read.

// onPremisesExtensionAttributes is the Graph property holding
// extensionAttribute1-15.
const onPremisesExtensionAttributes = "onPremisesExtensionAttributes"

// ReadableAttributes lists the connector.Attributes this connector reads
// (all of them), as Describe advertises them.
func ReadableAttributes() []string { return connector.Attributes() }

// userAttrs is the set of attributes a sync reads, in
// connector.Attributes' order, so that equal sets compare equal in a
// cursor.
type userAttrs []string

// wantAttributes returns the attributes of names this connector reads;
// names it does not know are left out, as the contract says.
func wantAttributes(names []string) userAttrs {
	var out userAttrs
	for _, a := range ReadableAttributes() {
		if slices.Contains(names, a) {
			out = append(out, a)
		}
	}
	return out
}

// isExtension reports whether name is one of extensionAttribute1-15.
func isExtension(name string) bool {
	return strings.HasPrefix(name, "extensionAttribute") && name != "extensionAttribute"
}

// selectProps returns the Graph properties to $select for the attributes:
// each by its own name but the extension attributes, which share one.
func (a userAttrs) selectProps() []string {
	var props []string
	for _, name := range a {
		if isExtension(name) {
			name = onPremisesExtensionAttributes
		}
		if !slices.Contains(props, name) {
			props = append(props, name)
		}
	}
	return props
}

// String names the set for a resync reason: "none" when empty.
func (a userAttrs) String() string {
	if len(a) == 0 {
		return "none"
	}
	return strings.Join(a, ", ")
}

// managerRef is an entry of manager@delta.
type managerRef struct {
	ID      string        `json:"id"`
	Removed *graphRemoval `json:"@removed"`
}

// decode returns the attributes of a delta user as User.attributes: a
// name present carries its value, "" for null; a name absent is one the
// change did not carry. full says the user comes from a full read, where
// Graph leaves out manager@delta for a user without a manager: there,
// an absent manager is "".
func (a userAttrs) decode(u *graphUser, full bool) (map[string]string, error) {
	if len(a) == 0 {
		return nil, nil
	}
	ext, err := extensionAttributes(u.ExtensionAttributes)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var errs []error
	for _, name := range a {
		var raw json.RawMessage
		switch {
		case name == connector.AttrManager:
			id, ok, err := managerID(u.Manager)
			if ok || (full && err == nil) {
				out[name] = id
			}
			errs = append(errs, err)
			continue
		case isExtension(name) && ext != nil:
			// The complex property comes whole: a member it leaves
			// out has no value.
			if raw = ext[name]; raw == nil {
				raw = json.RawMessage("null")
			}
		case isExtension(name):
			continue // not carried
		default:
			raw = u.attribute(name)
		}
		v, err := optString(name, raw)
		errs = append(errs, err)
		if v != nil {
			out[name] = *v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// extensionAttributes reads onPremisesExtensionAttributes: nil when the
// change did not carry it, an empty map when it is null.
func extensionAttributes(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	ext := map[string]json.RawMessage{}
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &ext); err != nil {
			return nil, fmt.Errorf("%s is not an object: %w", onPremisesExtensionAttributes, err)
		}
	}
	return ext, nil
}

// managerID reads manager@delta: the ID of its last entry not removed,
// "" when it holds none (the manager was taken away) or is null; ok is
// false when it is absent.
func managerID(raw json.RawMessage) (id string, ok bool, err error) {
	if raw == nil {
		return "", false, nil
	}
	if isNull(raw) {
		return "", true, nil
	}
	var refs []managerRef
	if err := json.Unmarshal(raw, &refs); err != nil {
		return "", false, fmt.Errorf("manager@delta is not a collection: %w", err)
	}
	for _, r := range refs {
		if r.Removed == nil && r.ID != "" {
			id = r.ID
		}
	}
	return id, true, nil
}

// attribute returns the raw value of a plain string attribute (one named
// as its Graph property), nil when the change did not carry it.
func (u *graphUser) attribute(name string) json.RawMessage {
	switch name {
	case connector.AttrPreferredLanguage:
		return u.PreferredLanguage
	case connector.AttrEmployeeID:
		return u.EmployeeID
	case connector.AttrEmployeeType:
		return u.EmployeeType
	case connector.AttrCompanyName:
		return u.CompanyName
	case connector.AttrOfficeLocation:
		return u.OfficeLocation
	case connector.AttrCity:
		return u.City
	case connector.AttrCountry:
		return u.Country
	case connector.AttrUsageLocation:
		return u.UsageLocation
	case connector.AttrMobilePhone:
		return u.MobilePhone
	}
	return nil
}

// proxyAddresses reads proxyAddresses: known is false when the change did
// not carry it; null is known and empty.
func proxyAddresses(raw json.RawMessage) (addrs []string, known bool, err error) {
	if raw == nil {
		return nil, false, nil
	}
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &addrs); err != nil {
			return nil, false, fmt.Errorf("proxyAddresses is not a collection of strings: %w", err)
		}
	}
	return addrs, true, nil
}
