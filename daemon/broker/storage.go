package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/dirsync/dirsync/events/store"
)

// The sync policies of nats { sync } in plugins.hcl: when events the
// embedded server has acknowledged reach the disk. nats-server writes each
// message of a single-replica stream to the OS before it acknowledges it
// (flush in place), so a crash of the process loses nothing; a power
// failure loses whatever the OS had not yet written, which is what these
// choose between.
const (
	// SyncAppend (the default): the event store fsyncs the DIRSYNC
	// stream's files before each append returns, so a job's state change
	// and all the events of its SAVING are on disk before the next state
	// is recorded, and COMPLETED means they are. Costs one fsync per
	// append (BENCHMARKS.md). The read models in KV are not synced: they
	// are rebuilt from the stream at start.
	SyncAppend = "append"
	// SyncAlways: nats-server fsyncs every write before acknowledging it
	// (its sync_interval: always), for every stream, KV included: appends
	// an order of magnitude slower (BENCHMARKS.md).
	SyncAlways = "always"
	// SyncInterval: nats-server's default, an fsync every two minutes. A
	// power failure may lose up to two minutes of acknowledged events,
	// completed jobs included (the next sync repairs the recipients).
	SyncInterval = "interval"
)

// SyncPolicies lists the values of nats { sync }, the default first.
func SyncPolicies() []string { return []string{SyncAppend, SyncAlways, SyncInterval} }

// Storage returns the embedded server's storage for the event store to
// sync and measure, or nil when the daemon uses an external server (whose
// disk it cannot reach).
func (b *Broker) Storage() store.Disk {
	if b.storage == nil {
		return nil
	}
	return b.storage
}

// fileStorage implements store.Disk on the JetStream store directory.
type fileStorage struct {
	srv *server.Server
	// dir is JetStream's store directory (…/jetstream/jetstream).
	dir string
	// policy is the sync policy; only SyncAppend makes Sync work.
	policy string
	// maxStore is nats { max_store } in bytes, 0 when not set.
	maxStore int64

	mu sync.Mutex
	// marks are the block files as last synced, by path.
	marks map[string]fileMark
	// laidOut holds the streams whose directories were synced once.
	laidOut map[string]bool
}

// fileMark is what a block file looked like when it was last synced.
type fileMark struct {
	size int64
	mod  time.Time
}

func newFileStorage(srv *server.Server, policy string, maxStore int64) *fileStorage {
	return &fileStorage{srv: srv, dir: srv.StoreDir(), policy: policy, maxStore: maxStore,
		marks: map[string]fileMark{}, laidOut: map[string]bool{}}
}

// Sync fsyncs the message block files of stream that changed since the
// last Sync, and their directory. Every message the server acknowledged
// is in those files already (a single-replica stream flushes in place
// before the ack), so after Sync they survive a power failure. The first
// Sync of a stream also fsyncs its metadata and the directories above it,
// so that the stream itself survives.
func (s *fileStorage) Sync(ctx context.Context, stream string) error {
	if s.policy != SyncAppend {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sdir, err := s.streamDir(stream)
	if err != nil {
		return err
	}
	msgs := filepath.Join(sdir, "msgs")
	ents, err := os.ReadDir(msgs)
	if err != nil {
		return fmt.Errorf("listing the files of stream %s: %w", stream, err)
	}
	seen := map[string]bool{}
	changed := false
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".blk") {
			continue
		}
		p := filepath.Join(msgs, e.Name())
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by the server since the listing
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		seen[p] = true
		m := fileMark{size: fi.Size(), mod: fi.ModTime()}
		if old, ok := s.marks[p]; ok && old == m {
			continue
		}
		if err := fsyncPath(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		s.marks[p] = m
		changed = true
	}
	for p := range s.marks {
		if filepath.Dir(p) == msgs && !seen[p] {
			delete(s.marks, p)
		}
	}
	// A new block file, or one the server replaced, is durable only with
	// its directory entry.
	if changed || !s.laidOut[stream] {
		if err := fsyncPath(msgs); err != nil {
			return err
		}
	}
	if !s.laidOut[stream] {
		for _, f := range []string{"meta.inf", "meta.sum"} {
			if err := fsyncPath(filepath.Join(sdir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		for d := sdir; ; d = filepath.Dir(d) {
			if err := fsyncPath(d); err != nil {
				return err
			}
			if d == s.dir || d == filepath.Dir(d) {
				break
			}
		}
		s.laidOut[stream] = true
	}
	return nil
}

// streamDir finds a stream's directory in the store: <store>/<account>/
// streams/<stream>. The account is the global one unless accounts are
// configured, so it is looked up rather than assumed.
func (s *fileStorage) streamDir(stream string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(s.dir, "*", "streams", stream))
	if err != nil {
		return "", fmt.Errorf("finding stream %s under %s: %w", stream, s.dir, err)
	}
	if len(matches) != 1 {
		return "", fmt.Errorf("finding stream %s under %s: %d matches, want 1", stream, s.dir, len(matches))
	}
	return matches[0], nil
}

// fsyncPath fsyncs a file or directory. Linux syncs a file's data through
// any descriptor of it, so a read-only one suffices.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("opening %s to sync it: %w", p, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s to disk: %w", p, err)
	}
	return nil
}

// Free returns the smaller of the file system's free space under the
// store and the room left under JetStream's storage limit.
func (s *fileStorage) Free(context.Context) (int64, string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, "", fmt.Errorf("reading the free space under %s: %w", s.dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	bound := fmt.Sprintf("the free space of the file system under %s (delete files there or grow it)", s.dir)
	info, err := s.srv.Jsz(nil)
	if err != nil {
		return 0, "", fmt.Errorf("reading JetStream's usage: %w", err)
	}
	if limit := info.Config.MaxStore; limit > 0 {
		used := int64(info.Store)
		if room := limit - used; room < free {
			free = room
			if s.maxStore > 0 {
				bound = fmt.Sprintf("nats { max_store } in plugins.hcl, %s with %s used (raise it and restart dirsyncd, or free JetStream space)",
					store.Bytes(limit), store.Bytes(used))
			} else {
				bound = fmt.Sprintf("JetStream's default limit, %s with %s used, three quarters of the disk that was free when dirsyncd started "+
					"(free disk space and restart dirsyncd, or set nats { max_store } in plugins.hcl)", store.Bytes(limit), store.Bytes(used))
			}
		}
	}
	return free, bound, nil
}
