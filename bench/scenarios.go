package bench

// Scenarios lists every scenario in the order of the issue, the
// identity sync's beside its sync scenarios, then the cluster's (fenced
// appends and failover), then the LDAP connector's.
func Scenarios() []Scenario {
	sc := append(syncScenarios(), identityScenarios()...)
	return append(append(append(sc, storeScenarios()...), clusterScenarios()...), ldapScenarios()...)
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
