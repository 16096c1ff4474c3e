// Command graphsim serves a simulated Microsoft Entra ID tenant and
// Microsoft Graph v1.0 over HTTPS on loopback, for `make run`, manual
// testing and benchmarks.
//
// Point the Azure AD connector at it with the printed authority host
// (https://127.0.0.1:8943/), Graph base URL (…/v1.0), the CA file and the
// client secret file. The secret is generated on first start and kept in
// -client-secret-file; it is never printed.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dirsync/dirsync/connectors/graphsim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "graphsim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	// Catch signals before the (possibly long) tenant generation.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("graphsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8943", "address to serve HTTPS on")
	users := fs.Int("users", 250, "number of users in the tenant")
	groups := fs.Int("groups", 20, "number of groups in the tenant")
	seed := fs.Int64("seed", 1, "seed of the deterministic tenant")
	domain := fs.String("tenant-domain", "", "primary domain (default "+graphsim.DefaultTenantDomain+")")
	tenantID := fs.String("tenant-id", "", "directory ID, a GUID (default derived from -seed)")
	clientID := fs.String("client-id", "", "the app's client ID (default "+graphsim.DefaultClientID+")")
	secretFile := fs.String("client-secret-file", "", "file holding the client secret Value; created with a new secret (mode 0600) if missing")
	caFile := fs.String("ca-file", "./graphsim-ca.pem", "where to write the CA certificate clients must trust")
	roles := fs.String("roles", "", "comma-separated application permissions granted (default User.Read.All,GroupMember.Read.All; \"none\" grants nothing)")
	expired := fs.Bool("expired-secret", false, "the client secret is expired (AADSTS7000222)")
	verbose := fs.Bool("v", false, "log every request to stderr")
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
	secret, err := loadOrCreateSecret(*secretFile)
	if err != nil {
		return err
	}
	cfg := graphsim.Config{
		Users:         *users,
		Groups:        *groups,
		Seed:          *seed,
		TenantDomain:  *domain,
		TenantID:      *tenantID,
		ClientID:      *clientID,
		ClientSecret:  secret,
		SecretExpired: *expired,
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

	<-ctx.Done()
	return sim.Close()
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
