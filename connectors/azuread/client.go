package azuread

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
	graphauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
	"go.uber.org/zap"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/capool"
)

// isMicrosoftAuthorityHost reports Microsoft's own Entra authority hosts,
// for which MSAL's instance discovery works. Any other host (a private or
// simulated authority) is used without instance discovery, which would
// otherwise ask login.microsoftonline.com about it.
func isMicrosoftAuthorityHost(host string) bool {
	switch strings.ToLower(host) {
	case "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
		"login.microsoftonline.us", "login-us.microsoftonline.com", "login.usgovcloudapi.net",
		"login.chinacloudapi.cn", "login.partner.microsoftonline.cn", "login.microsoftonline.de":
		return true
	}
	return false
}

// Timeouts and retry settings of the token requests (Graph requests are
// retried by retryMiddleware).
const (
	httpTimeout    = 100 * time.Second
	authMaxRetries = 2
	authRetryDelay = 500 * time.Millisecond
	authMaxDelay   = 5 * time.Second
)

// clientOptions are settings of a graphClient that are not config keys.
type clientOptions struct {
	// backoffBase replaces defaultBackoffBase (tests make it short).
	backoffBase time.Duration
	// jsonDepth replaces maxJSONDepth (tests raise it to see what the
	// parsers do without the check).
	jsonDepth int
}

// stats counts Graph traffic. Safe for concurrent use.
type stats struct {
	requests       atomic.Int64
	retries        atomic.Int64
	throttleWaitMS atomic.Int64
	// invalidUTF8 counts the JSON strings of Graph's answers that held
	// bytes that are not UTF-8 (see limitTransport), reported as
	// Progress.sanitized[SanitizeInvalidUTF8].
	invalidUTF8 atomic.Int64
	// retrying is what retry_budget bounds: the wall time during which a
	// request of the sync was failing or waiting to be retried. The users
	// and groups readers run side by side; an outage both meet counts
	// once, as the time the admin waits.
	retrying retryClock
	// waiting counts requests sleeping before a retry.
	waiting atomic.Int32
	// announced is when the last announced wait ends. A wait that starts
	// after it begins a new retry wave, logged at warn level and reported
	// to the host; one that starts before (the other reader meeting the
	// same outage, the rest of a throttled burst) is logged at debug level
	// only. So a long outage is told once per wait, never once per request.
	announceMu sync.Mutex
	announced  time.Time
	// reported: the host was told of a wave that has not ended yet.
	reported atomic.Bool
	// onRetry, when set (by Sync, before the first request), tells the
	// host of a retry wave, and of its end with nil.
	onRetry func(*connectorv1.Retrying)
}

// retryClock measures the union of the intervals during which at least
// one request is retrying.
type retryClock struct {
	mu     sync.Mutex
	active int
	since  time.Time
	total  time.Duration
}

// begin marks a request as retrying from at.
func (c *retryClock) begin(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == 0 {
		c.since = at
	}
	c.active++
}

// end marks a retrying request as done.
func (c *retryClock) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	if c.active == 0 {
		c.total += time.Since(c.since)
	}
}

// spent returns the retrying time so far.
func (c *retryClock) spent() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.total
	if c.active > 0 {
		t += time.Since(c.since)
	}
	return t
}

// graphClient is an authenticated Microsoft Graph client for one config.
type graphClient struct {
	cfg *Config
	// secret is kept only to redact it from error texts.
	secret string
	cred   azcore.TokenCredential
	scope  string
	sdk    *msgraphsdk.GraphServiceClient
	// adapter sends the requests the delta reader builds itself.
	adapter abs.RequestAdapter
	stats   *stats
	// base is the TLS transport under both the credential and the SDK.
	base *http.Transport
}

// close releases the client's idle connections. Every call builds its own
// client, so without this each call would leave connections open.
func (g *graphClient) close() { g.base.CloseIdleConnections() }

// tlsConfig returns TLS settings trusting the system pool plus ca_file.
func (c *Config) tlsConfig() (*tls.Config, error) {
	pool, err := capool.WithSystem(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// baseTransport returns an HTTP transport with the config's TLS settings.
func (c *Config) baseTransport() (*http.Transport, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.TLSClientConfig = tlsCfg
	t.ForceAttemptHTTP2 = true
	return t, nil
}

// Scope returns the OAuth scope of the Graph resource:
// <scheme>://<host of graph_url>/.default.
func (c *Config) Scope() string {
	u, err := url.Parse(c.GraphURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/.default"
}

// graphHost returns the host name of graph_url.
func (c *Config) graphHost() string {
	u, err := url.Parse(c.GraphURL)
	if err != nil {
		return c.GraphURL
	}
	return u.Host
}

// authorityHost returns the host name of authority_host.
func (c *Config) authorityHostName() string {
	u, err := url.Parse(c.AuthorityHost)
	if err != nil {
		return c.AuthorityHost
	}
	return u.Host
}

// newCredential returns the client secret credential of the config.
func newCredential(cfg *Config, secret string, transport http.RoundTripper) (azcore.TokenCredential, error) {
	u, err := url.Parse(cfg.AuthorityHost)
	if err != nil {
		return nil, fmt.Errorf("authority_host: %w", err)
	}
	opts := &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost},
			Transport: &http.Client{Transport: transport, Timeout: httpTimeout},
			Retry: policy.RetryOptions{
				MaxRetries:    authMaxRetries,
				RetryDelay:    authRetryDelay,
				MaxRetryDelay: authMaxDelay,
				ShouldRetry:   shouldRetryAuth,
			},
		},
		DisableInstanceDiscovery: !isMicrosoftAuthorityHost(u.Hostname()),
	}
	cred, err := azidentity.NewClientSecretCredential(cfg.Tenant, cfg.ClientID, secret, opts)
	if err != nil {
		// The constructor validates only the tenant and the secret's
		// presence; its errors do not contain the secret.
		return nil, fmt.Errorf("creating the client secret credential: %w", err)
	}
	return cred, nil
}

// shouldRetryAuth retries token requests on transient failures only, so a
// wrong CA or host name fails fast.
func shouldRetryAuth(resp *http.Response, err error) bool {
	if err != nil {
		return !isPermanentTransportError(err)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isPermanentTransportError reports errors that a retry cannot fix:
// untrusted certificates, unknown host names and answers beyond the
// response limits.
func isPermanentTransportError(err error) bool {
	var le *ResponseLimitError
	if isTLSError(err) || errors.As(err, &le) {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// newGraphClient builds the credential and the Graph SDK client of cfg.
// The secret is read (from client_secret_file) now. The SDK client runs
// over the TLS transport with the kiota/Graph middleware and sends the
// token to the Graph host only.
func newGraphClient(cfg *Config, log *zap.Logger, opts clientOptions) (*graphClient, error) {
	secret, err := cfg.ReadSecret()
	if err != nil {
		return nil, fmt.Errorf("client_secret_file: %w", err)
	}
	base, err := cfg.baseTransport()
	if err != nil {
		return nil, err
	}
	// Every answer, of Graph and of the token endpoint, is read through
	// the response limits before anything parses it. Only Graph's are
	// directory data whose invalid UTF-8 is counted.
	st := &stats{}
	limited := &limitTransport{next: base, maxBytes: cfg.maxResponseBytes(), maxDepth: maxJSONDepth}
	if opts.jsonDepth > 0 {
		limited.maxDepth = opts.jsonDepth
	}
	cred, err := newCredential(cfg, secret, limited)
	if err != nil {
		return nil, err
	}
	graphLimited := *limited
	graphLimited.invalidUTF8 = &st.invalidUTF8
	scope := cfg.Scope()
	u, err := url.Parse(cfg.GraphURL)
	if err != nil {
		return nil, fmt.Errorf("graph_url: %w", err)
	}
	// The provider sends no token at all to hosts outside this list, so it
	// must be graph_url's host (name only: the validator ignores ports).
	auth, err := graphauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("creating the Graph authentication provider: %w", err)
	}
	g := &graphClient{cfg: cfg, secret: secret, cred: cred, scope: scope, stats: st, base: base}
	clientOpts := msgraphsdk.GetDefaultClientOptions()
	retry := &retryMiddleware{
		budget: cfg.RetryBudget,
		base:   defaultBackoffBase,
		stats:  st,
		log:    log,
		token: func(ctx context.Context) (string, error) {
			tok, err := g.token(ctx)
			return tok.Token, err
		},
		sleep: sleepCtx,
	}
	if opts.backoffBase > 0 {
		retry.base = opts.backoffBase
	}
	// Ours first, so every retry passes through the rest of the pipeline;
	// kiota's RetryHandler out, so retries are not multiplied.
	middleware := []khttp.Middleware{retry}
	for _, m := range msgraphgocore.GetDefaultMiddlewaresWithOptions(&clientOpts) {
		if _, ok := m.(*khttp.RetryHandler); ok {
			continue
		}
		middleware = append(middleware, m)
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(&graphLimited, middleware...),
		// kiota's redirect middleware follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No overall Timeout: it would cut retries short of retry_budget.
		// The retry middleware bounds each attempt (attemptTimeout).
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the Graph request adapter: %w", err)
	}
	// Before NewGraphServiceClient: it copies the base URL into its path
	// parameters when constructed.
	adapter.SetBaseUrl(cfg.GraphURL)
	g.adapter = adapter
	g.sdk = msgraphsdk.NewGraphServiceClient(adapter)
	return g, nil
}

// token acquires a Graph token, as the SDK does before each request (same
// scope, CAE enabled, so the SDK reuses the cached token).
func (g *graphClient) token(ctx context.Context) (azcore.AccessToken, error) {
	return g.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{g.scope}, EnableCAE: true})
}
