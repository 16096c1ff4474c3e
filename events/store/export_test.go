package store

import "github.com/dirsync/dirsync/events"

// Estimate exposes estimate to the external tests.
func Estimate(evs []events.Event) int64 {
	n, err := estimate(evs)
	if err != nil {
		panic(err)
	}
	return n
}
