package service

import (
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dirsync/dirsync/daemon/config"
)

func TestNotifyEqual(t *testing.T) {
	a := config.Notify{Webhooks: []config.Webhook{{Name: "p", URL: "https://h/", Events: []string{"job.failed"}, Range: hcl.Range{Filename: "a"}}}}
	moved := config.Notify{Webhooks: []config.Webhook{{Name: "p", URL: "https://h/", Events: []string{"job.failed"}, Range: hcl.Range{Filename: "b"}}}}
	changed := config.Notify{Webhooks: []config.Webhook{{Name: "p", URL: "https://other/", Events: []string{"job.failed"}}}}
	if !notifyEqual(a, moved) {
		t.Error("a block moved in the file counts as changed")
	}
	if notifyEqual(a, changed) || notifyEqual(a, config.Notify{}) {
		t.Error("a changed block counts as the same")
	}
	if a.Webhooks[0].Range.Filename != "a" {
		t.Error("notifyEqual changed its argument")
	}
}
