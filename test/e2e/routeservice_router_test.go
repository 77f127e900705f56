package e2e

import "testing"

// A route bound to a route service goes through it on a separate `pando
// router` too, and the route service may send the request back through
// either router: in through the separate router and back through the
// server's, and the other way round. Skipping the route service through
// the separate router is refused.
func TestServices_routeServiceWorksThroughASeparateRouter(t *testing.T) {
	t.Parallel()
	rs := startRouteService(t)
	s := ownServerWithEnv(t, rs.trust)
	rp := s.startRouterWithEnv(t, rs.trust)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	const name = "guardedsep"
	s.mustPando(t, "push", name, "-p", staticSite(t, "the app\n"))
	host := name + ".localhost"
	s.bindRouteService(t, admin, name, rs)

	rs.sendBackThrough(s.routerAddr)
	rp.waitBody(t, host, "checked:the app")
	rs.sendBackThrough(rp.addr)
	if code, body, err := s.get(host, "/"); err != nil || code != 200 || body != "checked:the app\n" {
		t.Fatalf("in through the server's router, back through the separate one: %d %q %v", code, body, err)
	}
	forgedSignatureRefused(t, rp.http, rp.addr, host)
}
