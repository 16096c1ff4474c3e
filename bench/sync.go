package bench

// syncScenarios are the full sync, the full sync under Graph latency and
// the delta sync.
func syncScenarios() []Scenario { return nil }
