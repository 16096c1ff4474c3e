package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
)

// mailer sends the failure kinds as mail, over SMTP upgraded with
// STARTTLS: it refuses a server that does not offer it, so neither the
// password nor a message crosses the network in clear.
type mailer struct {
	cfg        config.Email
	host       string
	user, pass string
	tls        *tls.Config
}

func newMailer(e config.Email) (*mailer, error) {
	host, _, err := net.SplitHostPort(e.SMTP)
	if err != nil {
		return nil, fmt.Errorf("email %s: smtp %q: %w", e.Name, e.SMTP, err)
	}
	m := &mailer{cfg: e, host: host, tls: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
	if e.CAFile != "" {
		if m.tls.RootCAs, err = caPool("email "+e.Name+": ca_file", e.CAFile); err != nil {
			return nil, err
		}
	}
	if e.AuthFile != "" {
		b, err := readPrivate("email "+e.Name+": auth_file", e.AuthFile)
		if err != nil {
			return nil, err
		}
		user, pass, ok := strings.Cut(string(b), ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("email %s: auth_file %s must hold user:password on one line", e.Name, e.AuthFile)
		}
		m.user, m.pass = user, pass
	}
	return m, nil
}

// subject and text say what happened and what to do, for each kind.
func mailText(kind string, e events.Event) (subject, text string) {
	switch kind {
	case config.NotifyJobFailed, config.NotifyGuardTripped:
		var s events.SyncState
		_ = e.DecodeData(&s)
		what := "sync job FAILED"
		if kind == config.NotifyGuardTripped {
			what = "the mass-removal guard stopped a sync"
		}
		return fmt.Sprintf("[dirsync] %s: %s", s.Connector, what),
			fmt.Sprintf("Connector %s: %s.\n\nJob: %s\nAt: %s\n\n%s\n\nThe job's details: dirsync jobs show %s (or the web console's Jobs page).\n",
				s.Connector, what, s.JobID, e.Time.UTC().Format(time.RFC1123), s.Reason, s.JobID)
	case config.NotifyConnectorStale:
		var s ConnectorStale
		_ = e.DecodeData(&s)
		return fmt.Sprintf("[dirsync] %s has not synced since %s", s.Connector, s.LastSyncAt.UTC().Format("2006-01-02 15:04 MST")),
			s.Detail + ".\n"
	}
	return "[dirsync] " + e.Type, ""
}

// message builds the mail: plain text, with the event's ID as its
// Message-ID so that a mail sent again is recognisably the same.
func (m *mailer) message(kind string, e events.Event, now time.Time) []byte {
	subject, text := mailText(kind, e)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: dirsync <%s>\r\n", m.cfg.From)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.cfg.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", strings.NewReplacer("\r", " ", "\n", " ").Replace(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@dirsync>\r\n", e.ID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
	fmt.Fprintf(&b, "\r\n-- \r\nEvent %s (%s), sent by dirsync's notify block, email %q.\r\n", e.ID, e.Type, m.cfg.Name)
	return b.Bytes()
}

// send delivers one message.
func (m *mailer) send(ctx context.Context, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.cfg.SMTP)
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("dirsync"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return fmt.Errorf("the SMTP server %s does not offer STARTTLS; dirsync sends mail only over TLS: use the server's submission port (587)", m.cfg.SMTP)
	}
	if err := c.StartTLS(m.tls); err != nil {
		return fmt.Errorf("STARTTLS with %s: %w (ca_file trusts a private CA)", m.cfg.SMTP, err)
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return fmt.Errorf("SMTP AUTH as %s: %w (check auth_file)", m.user, err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return err
	}
	for _, to := range m.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// permanentMail reports an SMTP answer that refuses the message for good
// (5xx): sending it again would be refused again.
func permanentMail(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}
