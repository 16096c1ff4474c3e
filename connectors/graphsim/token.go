package graphsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// graphResource is Graph's application ID URI and graphAppID its app ID.
const (
	graphResource = "https://graph.microsoft.com"
	graphAppID    = "00000003-0000-0000-c000-000000000000"
)

// tokenClaims are the claims of a graphsim access token (the app-only v1
// token shape Entra issues for Graph).
type tokenClaims struct {
	Aud     string   `json:"aud"`
	Iss     string   `json:"iss"`
	Iat     int64    `json:"iat"`
	Nbf     int64    `json:"nbf"`
	Exp     int64    `json:"exp"`
	AppID   string   `json:"appid"`
	AppName string   `json:"app_displayname,omitempty"`
	IDTyp   string   `json:"idtyp"`
	OID     string   `json:"oid"`
	Roles   []string `json:"roles,omitempty"`
	Sub     string   `json:"sub"`
	TID     string   `json:"tid"`
	UTI     string   `json:"uti"`
	Ver     string   `json:"ver"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256","kid":"graphsim"}`))

// signToken returns the compact JWT for c, signed with HMAC-SHA256.
func signToken(key []byte, c *tokenClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Token failures, worded as Graph words them.
var (
	errTokenEmpty       = errors.New("Access token is empty.")
	errTokenMalformed   = errors.New("CompactToken parsing failed with error code: 80049217")
	errTokenInvalid     = errors.New("Access token validation failure.")
	errTokenExpired     = errors.New("Lifetime validation failed, the token is expired.")
	errTokenNotYetValid = errors.New("Access token has expired or is not yet valid.")
	errTokenAudience    = errors.New("Access token validation failure. Invalid audience.")
	errTokenTenant      = errors.New("Access token validation failure. Invalid issuer or tenant.")
)

// parseToken checks the signature and returns the claims; time, audience
// and tenant are checked by the caller.
func parseToken(key []byte, tok string) (*tokenClaims, error) {
	if tok == "" {
		return nil, errTokenEmpty
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, errTokenMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errTokenMalformed
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errTokenInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errTokenMalformed
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errTokenMalformed
	}
	return &c, nil
}
