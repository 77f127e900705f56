package cc

import (
	"net/http"
	"slices"
	"sync"
	"testing"
)

// notifyingAuth is tnAuth that records the users it is told were deleted.
type notifyingAuth struct {
	tnAuth
	mu      sync.Mutex
	deleted []string
}

func (n *notifyingAuth) UserDeleted(guid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deleted = append(n.deleted, guid)
}

// TestUsers_deleteTellsTheAuthenticator: DELETE /v3/users/:guid (cf
// delete-user's CC half) tells UAA, so the user's tokens end at once.
func TestUsers_deleteTellsTheAuthenticator(t *testing.T) {
	auth := &notifyingAuth{}
	e := tnNew(t, func(c *Config) { c.Auth = auth })
	e.job(e.do("DELETE", "/v3/users/dev", "", nil))
	if _, err := e.store.GetUser(t.Context(), "dev"); err == nil {
		t.Fatal("the user is still there")
	}
	auth.mu.Lock()
	defer auth.mu.Unlock()
	if !slices.Equal(auth.deleted, []string{"dev"}) {
		t.Errorf("UserDeleted calls: %v, want [dev]", auth.deleted)
	}
	// Refused deletes tell nothing.
	e.cfErr(e.doAs("bearer user:mgr", "DELETE", "/v3/users/other", ""), http.StatusForbidden)
	if len(auth.deleted) != 1 {
		t.Errorf("UserDeleted after a refused delete: %v", auth.deleted)
	}
}
