package bench

// Scenarios lists every scenario in the order of the issue, then the
// cluster's (fenced appends and failover), then the LDAP connector's.
func Scenarios() []Scenario {
	return append(append(append(syncScenarios(), storeScenarios()...), clusterScenarios()...), ldapScenarios()...)
}

// clusterScenarios measure what several replicas on a JetStream cluster
// cost: the fenced append beside the unconditional one (store_fence.go),
// and the time a connector has no writer when its holder dies
// (failover.go).
func clusterScenarios() []Scenario {
	return []Scenario{
		{Name: "fenced", Run: runFenced},
		{Name: "failover", Run: runFailover},
	}
}
