// Command graphsim serves a simulated Microsoft Entra ID tenant and
// Microsoft Graph v1.0 over HTTPS on loopback, for `make run`, manual
// testing and benchmarks, and changes a running one from another shell.
//
// Point the Azure AD connector at it with the printed authority host
// (https://127.0.0.1:8943/), Graph base URL (…/v1.0), the CA file and the
// client secret file. The secret is generated on first start and kept in
// -client-secret-file; it is never printed.
//
// Usage:
//
//	graphsim [server flags]                      serve (see graphsim -h)
//	graphsim churn -n 10 [-seed 3]               n random directory changes
//	graphsim faults [-throttle-rate 0.3 ...]     show or replace the injected faults
//	graphsim expire-delta [-mode gone]           expire every delta token
//	graphsim counters [-reset]                   requests by endpoint and status
//	graphsim status                              tenant size, version, faults
//	graphsim user disable|enable|restore ID...   change users
//	graphsim user delete [-permanent] ID...
//	graphsim user licenses [-sku a,b] ID...
//	graphsim members add|remove GROUP-ID MEMBER-ID...
//
// The subcommands call the admin endpoints of the running server
// (/_graphsim/ on the same listener), authenticated with the client
// secret; each takes -url, -ca-file and -client-secret-file, with the
// server's defaults.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
)

// Defaults shared by the server and the subcommands.
const (
	defaultListen = "127.0.0.1:8943"
	defaultCAFile = "./graphsim-ca.pem"
)

func main() {
	// A closed output (`make run | tee` stopped by Ctrl-C) must not kill
	// the server before it stops: with SIGPIPE caught, a write to it
	// fails with EPIPE instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Catch signals before the (possibly long) tenant generation.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "graphsim:", err)
		os.Exit(1)
	}
}

// run runs the server, or the subcommand named by args[0], until ctx
// ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, ok := subcommands[args[0]]
		if !ok {
			return fmt.Errorf("unknown subcommand %q (want one of %s, or flags to serve)", args[0], strings.Join(subcommandNames(), ", "))
		}
		return sub(ctx, args[1:], stdout, stderr)
	}
	return serve(ctx, args, stdout, stderr)
}

// subcommands are the commands that change a running graphsim.
var subcommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"churn":        cmdChurn,
	"faults":       cmdFaults,
	"expire-delta": cmdExpireDelta,
	"counters":     cmdCounters,
	"status":       cmdStatus,
	"user":         cmdUser,
	"members":      cmdMembers,
}

func subcommandNames() []string {
	var out []string
	for k := range subcommands {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// faultFlags are the flags that set Faults, for the server and for
// `graphsim faults`.
type faultFlags struct {
	throttle, serverErr, gateway, reset *float64
	retryAfter                          *string
	latency                             *time.Duration
	down                                *bool
	seed                                *int64
}

func addFaultFlags(fs *flag.FlagSet) *faultFlags {
	return &faultFlags{
		throttle:   fs.Float64("throttle-rate", 0, "share of Graph requests answered 429 TooManyRequests (0-1)"),
		retryAfter: fs.String("retry-after", "", "Retry-After of 429 and 503 answers: seconds (\"2\", \"0.5\"), \"http-date\", or \"none\" (default \"1\")"),
		serverErr:  fs.Float64("server-error-rate", 0, "share of Graph requests answered 503 serviceNotAvailable (0-1)"),
		gateway:    fs.Float64("gateway-timeout-rate", 0, "share of Graph requests answered 504 GatewayTimeout (0-1)"),
		reset:      fs.Float64("reset-rate", 0, "share of Graph requests whose connection is reset without an answer (0-1)"),
		latency:    fs.Duration("latency", 0, "latency added to every Graph request (e.g. 50ms)"),
		down:       fs.Bool("down", false, "answer every Graph request 503 until cleared"),
		seed:       fs.Int64("fault-seed", 0, "seed of the deterministic choice of faulted requests"),
	}
}

func (f *faultFlags) faults() graphsim.Faults {
	return graphsim.Faults{ThrottleRate: *f.throttle, RetryAfter: *f.retryAfter, ServerErrorRate: *f.serverErr,
		GatewayTimeoutRate: *f.gateway, ResetRate: *f.reset, Latency: *f.latency, Down: *f.down, Seed: *f.seed}
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("graphsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: graphsim [flags]              serve a simulated tenant\n"+
			"       graphsim SUBCOMMAND [flags]   change a running one: %s (graphsim SUBCOMMAND -h)\n\nFlags:\n",
			strings.Join(subcommandNames(), ", "))
		fs.PrintDefaults()
	}
	listen := fs.String("listen", defaultListen, "address to serve HTTPS on")
	users := fs.Int("users", 250, "number of users in the tenant")
	groups := fs.Int("groups", 20, "number of groups in the tenant")
	attributes := fs.Bool("attributes", false, "give users languages, managers, aliases, office attributes and mailbox purposes, and nest groups (three deep and a cycle)")
	resources := fs.Int("resources", 0, "number of shared, room and equipment mailboxes added after the users")
	seed := fs.Int64("seed", 1, "seed of the deterministic tenant")
	domain := fs.String("tenant-domain", "", "primary domain (default "+graphsim.DefaultTenantDomain+")")
	tenantID := fs.String("tenant-id", "", "directory ID, a GUID (default derived from -seed)")
	clientID := fs.String("client-id", "", "the app's client ID (default "+graphsim.DefaultClientID+")")
	secretFile := fs.String("client-secret-file", "", "file holding the client secret Value; created with a new secret (mode 0600) if missing")
	caFile := fs.String("ca-file", defaultCAFile, "where to write the CA certificate clients must trust")
	roles := fs.String("roles", "", "comma-separated application permissions granted (default User.Read.All,GroupMember.Read.All; \"none\" grants nothing)")
	expired := fs.Bool("expired-secret", false, "the client secret is expired (AADSTS7000222)")
	verbose := fs.Bool("v", false, "log every request to stderr")
	tokenLifetime := fs.Duration("token-lifetime", graphsim.DefaultTokenLifetime, "lifetime of the access tokens issued")
	deltaTTL := fs.Duration("delta-token-ttl", 0, "lifetime of delta tokens (0: they never expire)")
	deltaExpiry := fs.String("delta-token-expiry", string(graphsim.ExpiryGone), "how an expired delta token is refused: bad-request (400 syncStateNotFound), gone (410 with Location) or gone-empty (410, no body)")
	stateFile := fs.String("state-file", "", "keep the tenant, with every change, in this file: loaded at start when present (else generated and written), rewritten after each change")
	membersPerPage := fs.Int("delta-members-per-page", graphsim.DefaultDeltaMembersPerPage, "most members@delta entries on one groups delta page (larger groups are split across pages)")
	ff := addFaultFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *secretFile == "" {
		return errors.New("-client-secret-file is required")
	}
	mode, err := graphsim.ParseExpiryMode(*deltaExpiry)
	if err != nil {
		return err
	}
	secret, err := loadOrCreateSecret(*secretFile)
	if err != nil {
		return err
	}
	cfg := graphsim.Config{
		Users:               *users,
		Groups:              *groups,
		Attributes:          *attributes,
		Resources:           *resources,
		Seed:                *seed,
		TenantDomain:        *domain,
		TenantID:            *tenantID,
		ClientID:            *clientID,
		ClientSecret:        secret,
		SecretExpired:       *expired,
		TokenLifetime:       *tokenLifetime,
		DeltaTokenTTL:       *deltaTTL,
		DeltaTokenExpiry:    mode,
		DeltaMembersPerPage: *membersPerPage,
		Faults:              ff.faults(),
		StateFile:           *stateFile,
	}
	switch r := strings.TrimSpace(*roles); r {
	case "":
	case "none":
		cfg.Roles = []string{}
	default:
		for _, role := range strings.Split(r, ",") {
			if role = strings.TrimSpace(role); role != "" {
				cfg.Roles = append(cfg.Roles, role)
			}
		}
	}
	if *verbose {
		cfg.Log = stderr
	}
	sim, err := graphsim.New(cfg)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sim.Start(*listen); err != nil {
		return err
	}
	defer sim.Close()
	if err := sim.WriteCACert(*caFile); err != nil {
		return err
	}
	t := sim.Tenant()
	c := sim.Config()
	fmt.Fprintf(stdout, "graphsim: tenant %s (id %s) with %d users, %d groups at %s (CA: %s; client id %s, secret in %s)\n",
		t.Domain, t.ID, len(t.Users), len(t.Groups), sim.URL(), *caFile, c.ClientID, *secretFile)
	switch {
	case sim.Restored():
		fmt.Fprintf(stdout, "graphsim: the tenant as the last run left it, with its changes (version %d), from %s\n", sim.Version(), *stateFile)
	case *stateFile != "":
		fmt.Fprintf(stdout, "graphsim: a new tenant from -seed %d, kept with its changes in %s\n", *seed, *stateFile)
	}
	if f := sim.Faults(); f != (graphsim.Faults{}) {
		b, _ := json.Marshal(f)
		fmt.Fprintf(stdout, "graphsim: injecting faults %s\n", b)
	}

	<-ctx.Done()
	return sim.Close()
}

// client calls the admin endpoints of a running graphsim.
type client struct {
	base   string
	secret string
	http   *http.Client
}

// clientFlags adds the connection flags of a subcommand.
type clientFlags struct {
	url, caFile, secretFile *string
	json                    *bool
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{
		url:        fs.String("url", "https://"+defaultListen, "base URL of the running graphsim"),
		caFile:     fs.String("ca-file", defaultCAFile, "the CA certificate graphsim wrote"),
		secretFile: fs.String("client-secret-file", "", "the client secret file graphsim uses (required)"),
		json:       fs.Bool("json", false, "print the server's JSON answer"),
	}
}

func (cf *clientFlags) client() (*client, error) {
	if *cf.secretFile == "" {
		return nil, errors.New("-client-secret-file is required (the file the server was started with)")
	}
	b, err := os.ReadFile(*cf.secretFile)
	if err != nil {
		return nil, fmt.Errorf("read client secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return nil, fmt.Errorf("client secret file %s is empty", *cf.secretFile)
	}
	pem, err := os.ReadFile(*cf.caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", *cf.caFile)
	}
	u, err := url.Parse(strings.TrimRight(*cf.url, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("-url %q is not an https URL like https://%s", *cf.url, defaultListen)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &client{base: u.String(), secret: secret, http: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}, nil
}

// call sends an admin request and decodes the JSON answer into out (if
// not nil); it returns the raw body too.
func (c *client) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not JSON: %w", method, path, err)
		}
	}
	return b, nil
}

// subFlags makes the flag set of a subcommand.
func subFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet("graphsim "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: graphsim %s %s\n\nFlags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs, addClientFlags(fs)
}

// parse parses the flags; done is true for -h.
func parse(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, err
	}
	return false, nil
}

func cmdChurn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := subFlags("churn", "-n N [-seed S] [flags]", stderr)
	n := fs.Int("n", 10, "number of random changes")
	seed := fs.Int64("seed", 0, "seed of the random changes (default: the time)")
	if done, err := parse(fs, args); done {
		return err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		*seed = time.Now().UnixNano()
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out struct {
		Changes []string `json:"changes"`
		Version uint64   `json:"version"`
	}
	raw, err := c.call(ctx, http.MethodPost, fmt.Sprintf("/_graphsim/churn?n=%d&seed=%d", *n, *seed), nil, &out)
	if err != nil {
		return err
	}
	if *cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	for _, l := range out.Changes {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintf(stdout, "%d changes (seed %d), tenant version %d\n", len(out.Changes), *seed, out.Version)
	return nil
}

func cmdFaults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := subFlags("faults", "[-throttle-rate R] [-retry-after S] [-server-error-rate R] [-gateway-timeout-rate R] [-reset-rate R] [-latency D] [-down] [-fault-seed N] [-clear] [-token-lifetime D] [-delta-token-ttl D]\n\n"+
		"Without flags it shows the faults. Fault flags replace all faults (those not given are cleared).", stderr)
	ff := addFaultFlags(fs)
	clearAll := fs.Bool("clear", false, "clear every fault")
	tokenLifetime := fs.Duration("token-lifetime", 0, "lifetime of the access tokens issued from now on")
	deltaTTL := fs.Duration("delta-token-ttl", 0, "lifetime of delta tokens from now on (0: they never expire)")
	if done, err := parse(fs, args); done {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	setFaults := *clearAll
	settings := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "token-lifetime":
			settings["tokenLifetime"] = tokenLifetime.String()
		case "delta-token-ttl":
			settings["deltaTokenTTL"] = deltaTTL.String()
		case "url", "ca-file", "client-secret-file", "json", "clear":
		default:
			setFaults = true
		}
	})
	setSettings := len(settings) > 0
	c, err := cf.client()
	if err != nil {
		return err
	}
	if setSettings {
		body := settings
		raw, err := c.call(ctx, http.MethodPost, "/_graphsim/settings", body, nil)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(raw); err != nil {
			return err
		}
	}
	var raw []byte
	switch {
	case setFaults:
		f := ff.faults()
		if *clearAll {
			f = graphsim.Faults{}
		}
		raw, err = c.call(ctx, http.MethodPost, "/_graphsim/faults", f, nil)
	case !setSettings:
		raw, err = c.call(ctx, http.MethodGet, "/_graphsim/faults", nil, nil)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(raw)
	return err
}

func cmdExpireDelta(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := subFlags("expire-delta", "[-mode bad-request|gone|gone-empty] [flags]", stderr)
	mode := fs.String("mode", string(graphsim.ExpiryGone), "how the expired tokens are refused: bad-request (400 syncStateNotFound), gone (410 with Location) or gone-empty (410, no body)")
	if done, err := parse(fs, args); done {
		return err
	}
	m, err := graphsim.ParseExpiryMode(*mode)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.call(ctx, http.MethodPost, "/_graphsim/expire-delta?mode="+url.QueryEscape(string(m)), nil, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	fmt.Fprintf(stdout, "every delta token expired; the next use answers %s\n", m)
	return nil
}

func cmdCounters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := subFlags("counters", "[-reset] [flags]", stderr)
	reset := fs.Bool("reset", false, "print, then set the counters to zero")
	if done, err := parse(fs, args); done {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	method := http.MethodGet
	if *reset {
		method = http.MethodDelete
	}
	var out struct {
		Requests int64            `json:"requests"`
		Counters map[string]int64 `json:"counters"`
	}
	raw, err := c.call(ctx, method, "/_graphsim/counters", nil, &out)
	if err != nil {
		return err
	}
	if *cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	var ks []string
	for k := range out.Counters {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		fmt.Fprintf(stdout, "%8d  %s\n", out.Counters[k], k)
	}
	fmt.Fprintf(stdout, "%8d  Graph requests\n", out.Requests)
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := subFlags("status", "[flags]", stderr)
	if done, err := parse(fs, args); done {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.call(ctx, http.MethodGet, "/_graphsim/status", nil, nil)
	if err != nil {
		return err
	}
	_, err = stdout.Write(raw)
	return err
}

func cmdUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "disable|enable|delete|restore|licenses [-permanent] [-sku SKU,...] [flags] USER-ID [USER-ID ...]"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: graphsim user " + usage)
	}
	action := args[0]
	fs, cf := subFlags("user "+action, "[flags] USER-ID...", stderr)
	permanent := fs.Bool("permanent", false, "delete: delete permanently (not restorable) instead of soft-deleting")
	skus := fs.String("sku", "", "licenses: comma-separated skuIds to assign (empty removes all)")
	if done, err := parse(fs, args[1:]); done {
		return err
	}
	switch action {
	case "disable", "enable", "delete", "restore", "licenses":
	default:
		return errors.New("usage: graphsim user " + usage)
	}
	if fs.NArg() == 0 {
		return errors.New("no user ID given")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	for _, id := range fs.Args() {
		path := "/_graphsim/users/" + url.PathEscape(id) + "/" + action
		var body any
		switch action {
		case "delete":
			path += "?permanent=" + strconv.FormatBool(*permanent)
		case "licenses":
			list := []string{}
			for _, s := range strings.Split(*skus, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			body = map[string][]string{"skuIds": list}
		}
		raw, err := c.call(ctx, http.MethodPost, path, body, nil)
		if err != nil {
			return err
		}
		if *cf.json {
			if _, err := stdout.Write(raw); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%s user %s: done\n", action, id)
	}
	return nil
}

func cmdMembers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "add|remove [flags] GROUP-ID MEMBER-ID [MEMBER-ID ...]"
	if len(args) == 0 || (args[0] != "add" && args[0] != "remove") {
		return errors.New("usage: graphsim members " + usage)
	}
	action := args[0]
	fs, cf := subFlags("members "+action, "[flags] GROUP-ID MEMBER-ID...", stderr)
	if done, err := parse(fs, args[1:]); done {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("usage: graphsim members " + usage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	group := fs.Arg(0)
	raw, err := c.call(ctx, http.MethodPost, "/_graphsim/groups/"+url.PathEscape(group)+"/members/"+action,
		map[string][]string{"ids": fs.Args()[1:]}, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		_, err := stdout.Write(raw)
		return err
	}
	fmt.Fprintf(stdout, "%s %d members of group %s: done\n", action, fs.NArg()-1, group)
	return nil
}

// loadOrCreateSecret reads the secret Value from path, or creates path
// (mode 0600, with parent directories) holding a new Entra-style secret.
func loadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("client secret file %s is empty", path)
		}
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read client secret: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create client secret file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create client secret file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write client secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write client secret file: %w", err)
	}
	return secret, nil
}

// newSecret returns a 40-character secret Value shaped like Entra's
// ("abc8Q~" followed by 34 characters).
func newSecret() (string, error) {
	const (
		alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		body  = alnum + "_~.-"
	)
	draw := func(set string, n int, b *strings.Builder) error {
		for i := 0; i < n; i++ {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
			if err != nil {
				return err
			}
			b.WriteByte(set[k.Int64()])
		}
		return nil
	}
	var b strings.Builder
	if err := draw(alnum, 3, &b); err != nil {
		return "", err
	}
	if err := draw("0123456789", 1, &b); err != nil {
		return "", err
	}
	b.WriteString("Q~")
	if err := draw(body, 34, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}
