package bench

// Scenarios lists every scenario in the order of the issue.
func Scenarios() []Scenario {
	return append(syncScenarios(), storeScenarios()...)
}
