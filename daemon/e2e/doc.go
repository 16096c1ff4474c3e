// Package e2e holds dirsync's end-to-end tests: the real dirsyncd and
// dirsync binaries, the Azure AD connector as a go-plugin subprocess,
// msgraph-sdk-go and azidentity over real HTTPS against graphsim, and a
// real JetStream server (embedded, and the external one on
// $DIRSYNC_TEST_NATS_URL when set).
package e2e
