package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
)

// The raw client is the floor of a full sync's wall time: the least a Go
// program does to read the same directory from the same graphsim. It is
// plain net/http and encoding/json, with no SDK, no middleware and no
// store: it obtains a token with the client-credentials grant (as
// azidentity does), then follows the same delta chains the connector
// reads (users/delta and groups/delta with members, the connector's
// $select and Prefer header) from the first page to the @odata.deltaLink.
// Each page is decoded into a minimal struct (the IDs of the objects and
// of the members) and dropped. The users and groups chains are
// independent, so it reads them at the same time, one request in flight
// per chain: each chain is sequential by nature (a page's link is in the
// previous page).

// Delta settings the connector uses (connectors/azuread/delta.go), copied
// so that the raw client asks Graph for the very same pages.
const (
	rawUserSelect  = "id,userPrincipalName,mail,displayName,givenName,surname,department,jobTitle,accountEnabled,userType,assignedLicenses"
	rawGroupSelect = "id,displayName,mail,groupTypes,mailEnabled,securityEnabled,members"
	rawPrefer      = "odata.maxpagesize=999"
)

// rawClient reads Graph delta chains with net/http and encoding/json.
type rawClient struct {
	http  *http.Client
	sim   *graphsim.Sim
	token string
}

// newRawClient returns a client trusting graphsim's CA, over a transport
// like the connector's (http.DefaultTransport's settings, HTTP/2
// attempted).
func newRawClient(sim *graphsim.Sim) (*rawClient, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sim.CACertPEM()) {
		return nil, errors.New("raw client: graphsim's CA certificate does not parse")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.ForceAttemptHTTP2 = true
	return &rawClient{http: &http.Client{Transport: t, Timeout: 2 * time.Minute}, sim: sim}, nil
}

// close drops the client's idle connections.
func (c *rawClient) close() { c.http.CloseIdleConnections() }

// getToken obtains an access token with the client-credentials grant.
func (c *rawClient) getToken(ctx context.Context) error {
	cfg := c.sim.Config()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
		"scope":         {c.sim.URL() + "/.default"},
	}
	endpoint := c.sim.URL() + "/" + url.PathEscape(c.sim.Tenant().Domain) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("raw client: token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return fmt.Errorf("raw client: token: status %d, %v", resp.StatusCode, err)
	}
	c.token = tok.AccessToken
	return nil
}

// rawPage is the minimal decoding of a delta page: links and IDs.
type rawPage struct {
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
	Value     []struct {
		ID      string `json:"id"`
		Members []struct {
			ID string `json:"id"`
		} `json:"members@delta"`
	} `json:"value"`
}

// chainResult is what reading one delta chain took.
type chainResult struct {
	Pages     int
	Objects   int
	Members   int
	DeltaLink string
	Took      time.Duration
}

// chain fetches link and follows @odata.nextLink to the @odata.deltaLink.
func (c *rawClient) chain(ctx context.Context, link string) (chainResult, error) {
	var res chainResult
	start := time.Now()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
		if err != nil {
			return res, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Prefer", rawPrefer)
		resp, err := c.http.Do(req)
		if err != nil {
			return res, fmt.Errorf("raw client: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return res, fmt.Errorf("raw client: page %d: status %d: %s", res.Pages+1, resp.StatusCode, b)
		}
		var p rawPage
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil {
			return res, fmt.Errorf("raw client: page %d: %w", res.Pages+1, err)
		}
		res.Pages++
		res.Objects += len(p.Value)
		for _, v := range p.Value {
			res.Members += len(v.Members)
		}
		switch {
		case p.NextLink != "":
			link = p.NextLink
		case p.DeltaLink != "":
			res.DeltaLink = p.DeltaLink
			res.Took = time.Since(start)
			return res, nil
		default:
			return res, fmt.Errorf("raw client: page %d has no link", res.Pages)
		}
	}
}

// rawResult is a raw read of both chains.
type rawResult struct {
	Wall          time.Duration // token and both chains
	Users, Groups chainResult
}

// Pages is the number of Graph requests the read made.
func (r rawResult) Pages() int { return r.Users.Pages + r.Groups.Pages }

// String summarises the read for a Note.
func (r rawResult) String() string {
	return fmt.Sprintf("%.2f s: users %d pages/%.2f s, groups %d pages/%.2f s",
		r.Wall.Seconds(), r.Users.Pages, r.Users.Took.Seconds(), r.Groups.Pages, r.Groups.Took.Seconds())
}

// read gets a token, then reads the users and groups chains from their
// links at the same time.
func (c *rawClient) read(ctx context.Context, users, groups string) (rawResult, error) {
	var out rawResult
	start := time.Now()
	if err := c.getToken(ctx); err != nil {
		return out, err
	}
	var wg sync.WaitGroup
	var uerr, gerr error
	wg.Add(2)
	go func() { defer wg.Done(); out.Users, uerr = c.chain(ctx, users) }()
	go func() { defer wg.Done(); out.Groups, gerr = c.chain(ctx, groups) }()
	wg.Wait()
	out.Wall = time.Since(start)
	return out, errors.Join(uerr, gerr)
}

// rawInitialLinks are the first links of an initial round, as the
// connector builds them; latest asks for delta links from now without
// reading the objects ($deltatoken=latest).
func rawInitialLinks(sim *graphsim.Sim, latest bool) (users, groups string) {
	users = sim.GraphURL() + "/users/delta?$select=" + rawUserSelect
	groups = sim.GraphURL() + "/groups/delta?$select=" + rawGroupSelect
	if latest {
		users += "&$deltatoken=latest"
		groups += "&$deltatoken=latest"
	}
	return users, groups
}

// rawFullRead reads the whole directory of sim with the raw client (see
// above) and reports the wall time and the pages of each chain.
func rawFullRead(ctx context.Context, sim *graphsim.Sim) (rawResult, error) {
	c, err := newRawClient(sim)
	if err != nil {
		return rawResult{}, err
	}
	defer c.close()
	u, g := rawInitialLinks(sim, false)
	return c.read(ctx, u, g)
}

// rawLatestLinks returns delta links from the tenant's current version
// ($deltatoken=latest: one request per chain, no objects), for rawDelta.
func rawLatestLinks(ctx context.Context, sim *graphsim.Sim) (users, groups string, err error) {
	c, err := newRawClient(sim)
	if err != nil {
		return "", "", err
	}
	defer c.close()
	u, g := rawInitialLinks(sim, true)
	res, err := c.read(ctx, u, g)
	return res.Users.DeltaLink, res.Groups.DeltaLink, err
}

// rawDelta reads the changes since the delta links with the raw client.
func rawDelta(ctx context.Context, sim *graphsim.Sim, users, groups string) (rawResult, error) {
	c, err := newRawClient(sim)
	if err != nil {
		return rawResult{}, err
	}
	defer c.close()
	return c.read(ctx, users, groups)
}
