package bench

// storeScenarios are event append, projection rebuild and idle.
func storeScenarios() []Scenario { return nil }
