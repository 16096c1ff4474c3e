// Package broker gives the daemon its NATS connection: either an embedded
// nats-server (the real server, as a library) with JetStream under the data
// directory, or a connection to an existing NATS deployment.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/events/store"
)

// Options says which NATS to use.
type Options struct {
	// Listen is the embedded server's host:port (used when URL is empty).
	// Port 0 picks a free port.
	Listen string
	// DataDir holds the embedded server's JetStream store and the client
	// credential file.
	DataDir string
	// URL of an existing NATS server; empty embeds one.
	URL string
	// CredsFile, NkeyFile and CAFile authenticate to an existing server.
	CredsFile, NkeyFile, CAFile string
	// Name identifies the connection in the server's monitoring.
	Name string
	// Sync is the embedded server's sync policy (SyncAppend, SyncAlways or
	// SyncInterval); empty means SyncAppend.
	Sync string
	// MaxStore caps the embedded server's JetStream file storage, in
	// bytes; 0 leaves nats-server's default (three quarters of the disk
	// free at start).
	MaxStore int64
}

// Broker is a live NATS connection with JetStream, and the embedded server
// behind it if there is one.
type Broker struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	// ClientURL is the address other local processes connect to.
	ClientURL string
	// NkeyFile is the daemon's own seed file (embedded server only): full
	// rights, for dirsync's tools and tests, never for downstream services.
	NkeyFile string
	// ConsumerNkeyFile is the read-only seed file downstream services
	// authenticate with (embedded server only; see ConsumerPermissions).
	ConsumerNkeyFile string

	srv     *server.Server
	storage *fileStorage
}

// MaxAsyncPending is the connection's window of unacknowledged async
// publishes. The event store and the projector's KV writes share it, each
// waiting for acks every store.MaxPending publishes, so it must hold both
// at once: past the window a publish fails ("stalled with too many
// outstanding async published messages") instead of waiting.
const MaxAsyncPending = 16384

// NkeyFileName is the daemon's own credential for the embedded server,
// written (mode 0600) in its data directory: it may do anything, so it is
// not for downstream services; they get ConsumerNkeyFileName.
const NkeyFileName = "nats-user.nk"

// DaemonInboxPrefix is the inbox prefix of the daemon's connection to the
// embedded server, instead of nats.go's _INBOX: the consumer credential
// may subscribe to _INBOX.> (its replies arrive there), and must not see
// the daemon's replies nor learn the inbox subjects it could aim a push
// consumer at (see ConsumerPermissions).
const DaemonInboxPrefix = "_DIRSYNCD_INBOX"

// Start starts the embedded server or connects to opts.URL.
func Start(ctx context.Context, opts Options, log *zap.Logger) (*Broker, error) {
	if opts.Name == "" {
		opts.Name = "dirsyncd"
	}
	if opts.URL != "" {
		return connect(opts, log)
	}
	return embed(ctx, opts, log)
}

func embed(ctx context.Context, opts Options, log *zap.Logger) (*Broker, error) {
	began := time.Now()
	if opts.DataDir == "" {
		return nil, errors.New("broker: data directory not set")
	}
	if opts.Sync == "" {
		opts.Sync = SyncAppend
	}
	switch opts.Sync {
	case SyncAppend, SyncAlways, SyncInterval:
	default:
		return nil, fmt.Errorf("nats sync %q: use one of %s", opts.Sync, strings.Join(SyncPolicies(), ", "))
	}
	host, portStr, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: port: %w", opts.Listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	nkeyFile := filepath.Join(opts.DataDir, NkeyFileName)
	seed, pub, err := loadOrCreateNkey(nkeyFile)
	if err != nil {
		return nil, err
	}
	consumerFile := filepath.Join(opts.DataDir, ConsumerNkeyFileName)
	_, consumerPub, err := loadOrCreateNkey(consumerFile)
	if err != nil {
		return nil, err
	}
	sopts := &server.Options{
		ServerName: "dirsyncd",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(opts.DataDir, "jetstream"),
		Nkeys: []*server.NkeyUser{
			{Nkey: pub},
			{Nkey: consumerPub, Permissions: ConsumerPermissions()},
		},
		NoSigs:   true,
		NoLog:    false,
		HTTPPort: 0,
		// Only "always" changes nats-server's own policy; "append" keeps
		// its default and adds the event store's sync point.
		SyncAlways: opts.Sync == SyncAlways,
	}
	if opts.MaxStore > 0 {
		sopts.JetStreamMaxStore = opts.MaxStore
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	srv.SetLoggerV2(&serverLog{log: log.Named("nats")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats-server did not start listening on %s within 30s (is the port in use? set nats { listen = … } in plugins.hcl)", opts.Listen)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("nkey seed %s: %w", nkeyFile, err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(opts.Name),
		nats.Nkey(pub, kp.Sign), nats.MaxReconnects(-1), nats.CustomInboxPrefix(DaemonInboxPrefix))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connecting to embedded nats-server: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(MaxAsyncPending))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	st := newFileStorage(srv, opts.Sync, opts.MaxStore)
	limit := "max_store " + store.Bytes(opts.MaxStore)
	if c := srv.JetStreamConfig(); opts.MaxStore == 0 && c != nil {
		limit = "JetStream's default limit " + store.Bytes(c.MaxStore) + " (3/4 of the free disk)"
	}
	log.Info("embedded nats-server ready", zap.String("url", srv.ClientURL()),
		zap.String("store", sopts.StoreDir), zap.String("nkey_file", nkeyFile), zap.String("consumer_nkey_file", consumerFile),
		// Public keys, not secrets: the server names the nkey in each
		// "Publish Violation" it logs, and these say whose it was.
		zap.String("nkey", pub), zap.String("consumer_nkey", consumerPub),
		zap.String("sync", opts.Sync), zap.String("durability", durability(opts.Sync)), zap.String("storage_limit", limit),
		// Start-up time is mostly JetStream recovering its streams.
		zap.Duration("took", time.Since(began).Round(time.Millisecond)))
	return &Broker{Conn: nc, JS: js, ClientURL: srv.ClientURL(), NkeyFile: nkeyFile, ConsumerNkeyFile: consumerFile, srv: srv, storage: st}, nil
}

func connect(opts Options, log *zap.Logger) (*Broker, error) {
	nopts := []nats.Option{nats.Name(opts.Name), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
	}
	if opts.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(opts.CredsFile))
	}
	if opts.NkeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(opts.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey_file %s: %w", opts.NkeyFile, err)
		}
		nopts = append(nopts, o)
	}
	if opts.CAFile != "" {
		nopts = append(nopts, nats.RootCAs(opts.CAFile))
	}
	nc, err := nats.Connect(opts.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w (check nats { url } in plugins.hcl and that the server runs with JetStream)", redactURL(opts.URL), err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(MaxAsyncPending))
	if err != nil {
		nc.Close()
		return nil, err
	}
	log.Info("connected to NATS", zap.String("url", nc.ConnectedUrlRedacted()),
		zap.String("durability", "the NATS server's own: dirsyncd cannot fsync an external server, so a power failure there may lose what its "+
			"sync_interval had not yet synced (default 2m); set jetstream { sync_interval: always } in its configuration for none, see docs/durability.md"))
	return &Broker{Conn: nc, JS: js, ClientURL: nc.ConnectedUrlRedacted()}, nil
}

// Close drains the connection and stops the embedded server, flushing
// JetStream's store to disk.
func (b *Broker) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.Conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.Conn.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// loadOrCreateNkey reads the user seed from file, creating it (0600) on
// first start so the credential is stable across restarts. A seed that
// group or others may read is refused, not tightened: whoever could read
// it may already hold the credential, so the admin must know (and replace
// it by deleting the file) rather than have the daemon hide it.
func loadOrCreateNkey(file string) (seed []byte, pub string, err error) {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("NATS nkey seed %s is accessible by other users (mode %04o): anyone who read it can use the embedded NATS server; "+
			"run `chmod 600 %s` (or delete it to have a new seed created, then give local consumers the new file)", file, fi.Mode().Perm(), file)
	}
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		seed = []byte(strings.TrimSpace(string(b)))
	case errors.Is(err, os.ErrNotExist):
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, "", err
		}
		if seed, err = kp.Seed(); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(file, append(append([]byte{}, seed...), '\n'), 0o600); err != nil {
			return nil, "", fmt.Errorf("writing NATS credential %s: %w", file, err)
		}
	default:
		return nil, "", fmt.Errorf("reading NATS credential %s: %w", file, err)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, "", fmt.Errorf("NATS credential %s is not a user nkey seed: %w", file, err)
	}
	pub, err = kp.PublicKey()
	return seed, pub, err
}

// durability says in a log line what a sync policy guarantees.
func durability(policy string) string {
	switch policy {
	case SyncAlways:
		return "nats-server fsyncs every write before acknowledging it"
	case SyncInterval:
		return "nats-server fsyncs every 2m: a power failure may lose up to 2m of acknowledged events"
	default:
		return "events are fsynced before each append returns: a job is COMPLETED only once its events are on disk"
	}
}

// redactURL drops any user:password from a NATS URL before it is printed.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "[redacted]@" + u[i+1:]
		}
	}
	return u
}

// serverLog forwards nats-server's log to zap.
type serverLog struct{ log *zap.Logger }

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
