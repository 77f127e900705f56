package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

// testTenancy: orgs and spaces are renamed and deleted (only when empty),
// users listed and deleted, and roles are unique per user, type and org or
// space, and go with their user, org or space.
func testTenancy(t *testing.T, s pando.Store) {
	ctx := t.Context()
	org := pando.Org{GUID: newGUID("org"), Name: "o1", CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.CreateOrg(ctx, org))
	must(t, s.CreateOrg(ctx, pando.Org{GUID: newGUID("org"), Name: "taken"}))
	org.Name, org.UpdatedAt = "o2", at(5)
	must(t, s.UpdateOrg(ctx, org))
	got, err := s.GetOrg(ctx, org.GUID)
	must(t, err)
	wantEqual(t, got, org)
	wantKind(t, s.UpdateOrg(ctx, pando.Org{GUID: org.GUID, Name: "taken"}), pando.EConflict, `"taken"`)
	wantKind(t, s.UpdateOrg(ctx, pando.Org{GUID: "nope", Name: "x"}), pando.ENotFound, "nope")

	sp := pando.Space{GUID: newGUID("space"), Name: "A", OrgGUID: org.GUID, CreatedAt: at(1), UpdatedAt: at(1)}
	must(t, s.CreateSpace(ctx, sp))
	sp.Name, sp.UpdatedAt = "B", at(6)
	must(t, s.UpdateSpace(ctx, sp))
	gotSp, err := s.GetSpace(ctx, sp.GUID)
	must(t, err)
	wantEqual(t, gotSp, sp)

	u1 := pando.User{GUID: newGUID("user"), Name: "dev", PasswordHash: "h", CreatedAt: at(0)}
	u2 := pando.User{GUID: newGUID("user"), Name: "aud", PasswordHash: "h", CreatedAt: at(1)}
	must(t, s.CreateUser(ctx, u1))
	must(t, s.CreateUser(ctx, u2))
	users, err := s.ListUsers(ctx, nil, []string{"aud", "missing"})
	must(t, err)
	wantGUIDs(t, users, u2.GUID)
	users, err = s.ListUsers(ctx, nil, nil)
	must(t, err)
	wantGUIDs(t, users, u1.GUID, u2.GUID)

	orgRole := pando.Role{GUID: newGUID("role"), Type: pando.RoleOrgUser, UserGUID: u1.GUID, OrgGUID: org.GUID, CreatedAt: at(2), UpdatedAt: at(2)}
	spaceRole := pando.Role{GUID: newGUID("role"), Type: pando.RoleSpaceDeveloper, UserGUID: u1.GUID, SpaceGUID: sp.GUID, CreatedAt: at(3), UpdatedAt: at(3)}
	audRole := pando.Role{GUID: newGUID("role"), Type: pando.RoleSpaceAuditor, UserGUID: u2.GUID, SpaceGUID: sp.GUID, CreatedAt: at(4), UpdatedAt: at(4)}
	must(t, s.CreateRole(ctx, orgRole))
	must(t, s.CreateRole(ctx, spaceRole))
	must(t, s.CreateRole(ctx, audRole))
	gotRole, err := s.GetRole(ctx, spaceRole.GUID)
	must(t, err)
	wantEqual(t, gotRole, spaceRole)
	wantKind(t, s.CreateRole(ctx, pando.Role{GUID: newGUID("role"), Type: pando.RoleOrgUser, UserGUID: u1.GUID, OrgGUID: org.GUID}), pando.EConflict)
	wantKind(t, s.CreateRole(ctx, pando.Role{GUID: newGUID("role"), Type: pando.RoleOrgUser, UserGUID: "nope", OrgGUID: org.GUID}), pando.EInvalid)
	wantKind(t, s.CreateRole(ctx, pando.Role{GUID: newGUID("role"), Type: pando.RoleOrgUser, UserGUID: u1.GUID}), pando.EInvalid)

	roles, err := s.ListRoles(ctx, pando.RoleFilter{UserGUIDs: []string{u1.GUID}})
	must(t, err)
	wantGUIDs(t, roles, orgRole.GUID, spaceRole.GUID)
	roles, err = s.ListRoles(ctx, pando.RoleFilter{SpaceGUIDs: []string{sp.GUID}, Types: []string{pando.RoleSpaceAuditor}})
	must(t, err)
	wantGUIDs(t, roles, audRole.GUID)

	// A user's roles go with the user.
	must(t, s.DeleteUser(ctx, u2.GUID))
	wantKind(t, s.DeleteUser(ctx, u2.GUID), pando.ENotFound)
	_, err = s.GetRole(ctx, audRole.GUID)
	wantKind(t, err, pando.ENotFound)

	// An org with a space cannot go; the space's roles go with the space,
	// the org's with the org.
	wantKind(t, s.DeleteOrg(ctx, org.GUID), pando.EInvalid)
	must(t, s.DeleteSpace(ctx, sp.GUID))
	wantKind(t, s.DeleteSpace(ctx, sp.GUID), pando.ENotFound)
	_, err = s.GetRole(ctx, spaceRole.GUID)
	wantKind(t, err, pando.ENotFound)
	must(t, s.DeleteOrg(ctx, org.GUID))
	_, err = s.GetRole(ctx, orgRole.GUID)
	wantKind(t, err, pando.ENotFound)
	wantKind(t, s.DeleteRole(ctx, "nope"), pando.ENotFound)
}

// testQuotas: quotas round-trip their limits (nil is unlimited), names are
// unique per kind (and org), and deleting one frees its orgs and spaces.
func testQuotas(t *testing.T, s pando.Store) {
	ctx := t.Context()
	mem := int64(512)
	q := pando.Quota{GUID: newGUID("quota"), Kind: pando.QuotaOrg, Name: "q1", Limits: pando.QuotaLimits{TotalMemoryMB: &mem}, CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.CreateQuota(ctx, q))
	got, err := s.GetQuota(ctx, q.GUID)
	must(t, err)
	wantEqual(t, got, q)
	wantKind(t, s.CreateQuota(ctx, pando.Quota{GUID: newGUID("quota"), Kind: pando.QuotaOrg, Name: "q1"}), pando.EConflict, `"q1"`)

	org := pando.Org{GUID: newGUID("org"), Name: "o", QuotaGUID: q.GUID, CreatedAt: at(1), UpdatedAt: at(1)}
	must(t, s.CreateOrg(ctx, org))
	sq := pando.Quota{GUID: newGUID("quota"), Kind: pando.QuotaSpace, Name: "q1", OrgGUID: org.GUID, CreatedAt: at(2), UpdatedAt: at(2)}
	must(t, s.CreateQuota(ctx, sq))
	sp := pando.Space{GUID: newGUID("space"), Name: "s", OrgGUID: org.GUID, QuotaGUID: sq.GUID, CreatedAt: at(3), UpdatedAt: at(3)}
	must(t, s.CreateSpace(ctx, sp))
	gotSp, err := s.GetSpace(ctx, sp.GUID)
	must(t, err)
	wantEqual(t, gotSp, sp)

	list, err := s.ListQuotas(ctx, pando.QuotaSpace, nil, []string{"q1"}, []string{org.GUID})
	must(t, err)
	wantGUIDs(t, list, sq.GUID)

	q.Name, q.Limits.TotalMemoryMB, q.UpdatedAt = "q2", nil, at(4)
	must(t, s.UpdateQuota(ctx, q))
	got, err = s.GetQuota(ctx, q.GUID)
	must(t, err)
	wantEqual(t, got, q)

	must(t, s.DeleteQuota(ctx, q.GUID))
	wantKind(t, s.DeleteQuota(ctx, q.GUID), pando.ENotFound)
	gotOrg, err := s.GetOrg(ctx, org.GUID)
	must(t, err)
	if gotOrg.QuotaGUID != "" {
		t.Errorf("org keeps deleted quota %s", gotOrg.QuotaGUID)
	}
}
