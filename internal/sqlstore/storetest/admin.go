package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

func newBuildpack(name, stack string, position int) pando.Buildpack {
	return pando.Buildpack{
		GUID:      newGUID("bp"),
		Name:      name,
		Stack:     stack,
		Position:  position,
		Enabled:   true,
		State:     pando.BuildpackReady,
		Filename:  name + ".zip",
		SHA256:    "sha-" + name,
		Size:      4096,
		CreatedAt: at(position),
		UpdatedAt: at(position),
	}
}

func testBuildpacks(t *testing.T, s pando.Store) {
	ctx := t.Context()
	// Created out of order; two share position 2 and sort by name.
	gobp := newBuildpack("go_buildpack", "", 2)
	static := newBuildpack("staticfile_buildpack", "", 1)
	binary := newBuildpack("binary_buildpack", "", 2)
	locked := newBuildpack("locked_buildpack", "cflinuxfs4", 3)
	locked.Enabled, locked.Locked = false, true
	locked.State = pando.BuildpackAwaitingUpload
	for _, b := range []pando.Buildpack{gobp, static, binary, locked} {
		must(t, s.CreateBuildpack(ctx, b))
	}

	for _, want := range []pando.Buildpack{gobp, locked} {
		got, err := s.GetBuildpack(ctx, want.GUID)
		must(t, err)
		wantEqual(t, got, want)
	}
	_, err := s.GetBuildpack(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "buildpack", "nope")

	all, err := s.ListBuildpacks(ctx, nil)
	must(t, err)
	wantGUIDs(t, all, static.GUID, binary.GUID, gobp.GUID, locked.GUID)

	wantKind(t, s.CreateBuildpack(ctx, newBuildpack("go_buildpack", "", 9)), pando.EConflict, `"go_buildpack"`)
	// The same name for another stack is a different buildpack.
	goFs4 := newBuildpack("go_buildpack", "cflinuxfs4", 9)
	must(t, s.CreateBuildpack(ctx, goFs4))
	wantKind(t, s.CreateBuildpack(ctx, newBuildpack("go_buildpack", "cflinuxfs4", 10)), pando.EConflict, `"go_buildpack"`, `"cflinuxfs4"`)

	byName, err := s.ListBuildpacks(ctx, []string{"go_buildpack", "staticfile_buildpack"})
	must(t, err)
	wantGUIDs(t, byName, static.GUID, gobp.GUID, goFs4.GUID)

	// Moving a buildpack to the front reorders the list.
	upd := gobp
	upd.Position = 0
	upd.Enabled = false
	upd.Locked = true
	upd.Filename = "go_buildpack-v2.zip"
	upd.SHA256 = "new"
	upd.Size = 1 << 35
	upd.UpdatedAt = at(100)
	must(t, s.UpdateBuildpack(ctx, upd))
	got, err := s.GetBuildpack(ctx, gobp.GUID)
	must(t, err)
	wantEqual(t, got, upd)
	all, err = s.ListBuildpacks(ctx, nil)
	must(t, err)
	wantGUIDs(t, all, gobp.GUID, static.GUID, binary.GUID, locked.GUID, goFs4.GUID)

	rename := static
	rename.Name = "binary_buildpack"
	wantKind(t, s.UpdateBuildpack(ctx, rename), pando.EConflict, `"binary_buildpack"`)
	wantKind(t, s.UpdateBuildpack(ctx, newBuildpack("ghost", "", 1)), pando.ENotFound)

	must(t, s.DeleteBuildpack(ctx, binary.GUID))
	wantKind(t, s.DeleteBuildpack(ctx, binary.GUID), pando.ENotFound, binary.GUID)
	all, err = s.ListBuildpacks(ctx, nil)
	must(t, err)
	wantGUIDs(t, all, gobp.GUID, static.GUID, locked.GUID, goFs4.GUID)
}

func testStacks(t *testing.T, s pando.Store) {
	ctx := t.Context()
	host := pando.Stack{GUID: newGUID("stack"), Name: "host", Description: "the host's root filesystem", Default: true, CreatedAt: at(0), UpdatedAt: at(0)}
	deb := pando.Stack{GUID: newGUID("stack"), Name: "debian-12", Description: "Debian 12", CreatedAt: at(1), UpdatedAt: at(2)}
	must(t, s.CreateStack(ctx, host))
	must(t, s.CreateStack(ctx, deb))
	wantKind(t, s.CreateStack(ctx, pando.Stack{GUID: newGUID("stack"), Name: "host"}), pando.EConflict, `"host"`)

	all, err := s.ListStacks(ctx, nil)
	must(t, err)
	wantEqual(t, all, []pando.Stack{host, deb})
	byName, err := s.ListStacks(ctx, []string{"debian-12", "missing"})
	must(t, err)
	wantEqual(t, byName, []pando.Stack{deb})
}

func testEvents(t *testing.T, s pando.Store) {
	ctx := t.Context()
	ev := func(typ, target, space string, sec int) pando.Event {
		return pando.Event{
			GUID: newGUID("event"), Type: typ,
			ActorGUID: "user-1", ActorType: "user", ActorName: "admin",
			TargetGUID: target, TargetType: "app", TargetName: "name-" + target,
			SpaceGUID: space, OrgGUID: "org-1",
			CreatedAt: at(sec),
		}
	}
	e1 := ev("audit.app.create", "app-1", "space-1", 1)
	e1.Data = map[string]any{
		"request": map[string]any{"name": "app-1", "instances": float64(2), "ports": []any{float64(8080)}},
		"ok":      true,
		"note":    nil,
	}
	e2 := ev("audit.app.start", "app-1", "space-1", 2)
	e2.Data = map[string]any{}
	e3 := ev("audit.app.create", "app-2", "space-2", 3)
	// Two events in the same instant keep their insertion order.
	e4 := ev("audit.app.update", "app-1", "space-1", 4)
	e5 := ev("audit.app.restage", "app-1", "space-1", 4)
	// Inserted last but older than all others.
	e0 := ev("audit.space.create", "space-1", "space-1", 0)
	for _, e := range []pando.Event{e1, e2, e3, e4, e5, e0} {
		must(t, s.CreateEvent(ctx, e))
	}
	wantKind(t, s.CreateEvent(ctx, e1), pando.EConflict, e1.GUID)

	all, err := s.ListEvents(ctx, pando.EventFilter{})
	must(t, err)
	wantEqual(t, all, []pando.Event{e0, e1, e2, e3, e4, e5})

	desc, err := s.ListEvents(ctx, pando.EventFilter{Descending: true})
	must(t, err)
	wantGUIDs(t, desc, e5.GUID, e4.GUID, e3.GUID, e2.GUID, e1.GUID, e0.GUID)

	latest, err := s.ListEvents(ctx, pando.EventFilter{Descending: true, Limit: 2})
	must(t, err)
	wantGUIDs(t, latest, e5.GUID, e4.GUID)
	oldest, err := s.ListEvents(ctx, pando.EventFilter{Limit: 2})
	must(t, err)
	wantGUIDs(t, oldest, e0.GUID, e1.GUID)

	cases := []struct {
		name   string
		filter pando.EventFilter
		want   []string
	}{
		{"target", pando.EventFilter{TargetGUIDs: []string{"app-1"}}, []string{e1.GUID, e2.GUID, e4.GUID, e5.GUID}},
		{"types", pando.EventFilter{Types: []string{"audit.app.create", "audit.space.create"}}, []string{e0.GUID, e1.GUID, e3.GUID}},
		{"space", pando.EventFilter{SpaceGUIDs: []string{"space-2"}}, []string{e3.GUID}},
		{"target and type, newest first, limited", pando.EventFilter{TargetGUIDs: []string{"app-1", "app-2"}, Types: []string{"audit.app.create", "audit.app.update"}, Descending: true, Limit: 2}, []string{e4.GUID, e3.GUID}},
		{"no match", pando.EventFilter{TargetGUIDs: []string{"app-2"}, SpaceGUIDs: []string{"space-1"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListEvents(ctx, c.filter)
			must(t, err)
			wantGUIDs(t, got, c.want...)
		})
	}

	// Retention: those created before the instant go, that instant's stay.
	must(t, s.DeleteEventsBefore(ctx, at(2)))
	left, err := s.ListEvents(ctx, pando.EventFilter{})
	must(t, err)
	wantGUIDs(t, left, e2.GUID, e3.GUID, e4.GUID, e5.GUID)
}

func testUsers(t *testing.T, s pando.Store) {
	ctx := t.Context()
	admin := pando.User{GUID: newGUID("user"), Name: "admin", PasswordHash: "$2a$10$abcdefghijklmnopqrstuv", Admin: true, CreatedAt: at(0)}
	dev := pando.User{GUID: newGUID("user"), Name: "dev@example.com", PasswordHash: "x", CreatedAt: at(1)}
	must(t, s.CreateUser(ctx, admin))
	must(t, s.CreateUser(ctx, dev))

	got, err := s.GetUser(ctx, admin.GUID)
	must(t, err)
	wantEqual(t, got, admin)
	got, err = s.GetUserByName(ctx, "dev@example.com")
	must(t, err)
	wantEqual(t, got, dev)

	_, err = s.GetUser(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "user", "nope")
	_, err = s.GetUserByName(ctx, "nobody")
	wantKind(t, err, pando.ENotFound, "nobody")
	_, err = s.GetUserByName(ctx, "ADMIN")
	wantKind(t, err, pando.ENotFound)

	wantKind(t, s.CreateUser(ctx, pando.User{GUID: newGUID("user"), Name: "admin"}), pando.EConflict, `"admin"`)
	wantKind(t, s.CreateUser(ctx, pando.User{GUID: admin.GUID, Name: "other"}), pando.EConflict, admin.GUID)

	dev.PasswordHash, dev.Admin = "new-hash", true
	must(t, s.UpdateUser(ctx, dev))
	got, err = s.GetUser(ctx, dev.GUID)
	must(t, err)
	wantEqual(t, got, dev)
	wantKind(t, s.UpdateUser(ctx, pando.User{GUID: "nope"}), pando.ENotFound, "nope")
}

func testJobs(t *testing.T, s pando.Store) {
	ctx := t.Context()
	j := pando.Job{GUID: newGUID("job"), Operation: "app.apply_manifest", State: pando.JobProcessing,
		ResourceType: "space", ResourceGUID: "space-1", UserGUID: "user-1", CreatedAt: at(0), UpdatedAt: at(0)}
	must(t, s.CreateJob(ctx, j))
	got, err := s.GetJob(ctx, j.GUID)
	must(t, err)
	wantEqual(t, got, j)
	_, err = s.GetJob(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "job", "nope")
	wantKind(t, s.CreateJob(ctx, j), pando.EConflict, j.GUID)

	upd := j
	upd.State = pando.JobFailed
	upd.Errors = []pando.JobError{
		{Code: 10008, Title: "CF-UnprocessableEntity", Detail: `memory "1T" is too large`},
		{Code: 10001, Title: "CF-MessageParseError", Detail: "line 3: bad\nyaml"},
	}
	upd.UpdatedAt = at(9)
	must(t, s.UpdateJob(ctx, upd))
	got, err = s.GetJob(ctx, j.GUID)
	must(t, err)
	wantEqual(t, got, upd)

	upd.Errors = []pando.JobError{}
	upd.State = pando.JobComplete
	must(t, s.UpdateJob(ctx, upd))
	got, err = s.GetJob(ctx, j.GUID)
	must(t, err)
	wantEqual(t, got, upd)

	wantKind(t, s.UpdateJob(ctx, pando.Job{GUID: "ghost"}), pando.ENotFound, "ghost")

	// Retention: finished jobs created before the instant go; one still
	// processing, or created at that instant, stays.
	busy := pando.Job{GUID: newGUID("job"), Operation: "space.delete", State: pando.JobProcessing, CreatedAt: at(0), UpdatedAt: at(0)}
	recent := pando.Job{GUID: newGUID("job"), Operation: "space.delete", State: pando.JobFailed, CreatedAt: at(5), UpdatedAt: at(5)}
	must(t, s.CreateJob(ctx, busy))
	must(t, s.CreateJob(ctx, recent))
	must(t, s.DeleteFinishedJobsBefore(ctx, at(5)))
	_, err = s.GetJob(ctx, j.GUID)
	wantKind(t, err, pando.ENotFound, j.GUID)
	for _, kept := range []pando.Job{busy, recent} {
		_, err = s.GetJob(ctx, kept.GUID)
		must(t, err)
	}
}
