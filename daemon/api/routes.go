package api

import "net/http"

// Route is one route of the API, as openapi.yaml documents it.
type Route struct {
	// Method is the HTTP method, e.g. "GET" (a GET route also answers HEAD).
	Method string
	// Pattern is the path in net/http ServeMux syntax, whose {name}
	// wildcards are also OpenAPI path parameters, e.g. "/v1/jobs/{id}".
	Pattern string
	// Public routes need no bearer token on TCP: health, readiness,
	// metrics and the OpenAPI document. Every other route does.
	Public bool
}

// route is a Route with its handler.
type route struct {
	Route
	handle func(*Server, http.ResponseWriter, *http.Request)
}

// routeTable is every route the server registers, in one place.
func routeTable() []route {
	r := func(method, pattern string, h func(*Server, http.ResponseWriter, *http.Request)) route {
		return route{Route: Route{Method: method, Pattern: pattern}, handle: h}
	}
	public := func(method, pattern string, h func(*Server, http.ResponseWriter, *http.Request)) route {
		return route{Route: Route{Method: method, Pattern: pattern, Public: true}, handle: h}
	}
	return []route{
		public(http.MethodGet, "/healthz", (*Server).healthz),
		public(http.MethodGet, "/readyz", (*Server).readyz),
		public(http.MethodGet, "/metrics", (*Server).serveMetrics),
		public(http.MethodGet, "/v1/openapi.yaml", (*Server).openAPI),

		r(http.MethodGet, "/v1/status", (*Server).status),
		r(http.MethodGet, "/v1/connectors", (*Server).connectors),
		r(http.MethodPost, "/v1/connectors/{name}/test", (*Server).test),
		r(http.MethodPost, "/v1/connectors/{name}/sync", (*Server).sync),
		r(http.MethodPost, "/v1/connectors/{name}/retire", (*Server).retire),

		r(http.MethodGet, "/v1/jobs", (*Server).jobs),
		r(http.MethodGet, "/v1/jobs/{id}", (*Server).job),
		r(http.MethodGet, "/v1/jobs/{id}/changes", (*Server).jobChanges),
		r(http.MethodPost, "/v1/jobs/{id}/cancel", (*Server).cancel),

		r(http.MethodGet, "/v1/recipients", (*Server).recipients),
		r(http.MethodGet, "/v1/recipients/history", (*Server).history),
		r(http.MethodGet, "/v1/recipients/export", (*Server).export),
		r(http.MethodGet, "/v1/recipients/explain", (*Server).explain),
		r(http.MethodGet, "/v1/recipients/{id}", (*Server).recipient),

		r(http.MethodGet, "/v1/groups", (*Server).groups),
		r(http.MethodGet, "/v1/groups/{id}", (*Server).group),

		r(http.MethodGet, "/v1/notify", (*Server).notifyStatus),
	}
}

// Routes lists every route of the API with whether it needs a token.
func Routes() []Route {
	t := routeTable()
	out := make([]Route, len(t))
	for i, rt := range t {
		out[i] = rt.Route
	}
	return out
}
