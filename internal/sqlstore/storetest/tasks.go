package storetest

import (
	"testing"

	"github.com/pandoplatform/pando"
)

func testAppTasks(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	other := newApp(f.space.GUID, "other")
	must(t, s.CreateApp(ctx, other))

	newTask := func(app, name string) pando.AppTask {
		return pando.AppTask{GUID: newGUID("task"), AppGUID: app, Name: name, Command: "rake db:migrate",
			State: pando.AppTaskPending, MemoryMB: 256, DiskMB: 1024, DropletGUID: "droplet-1", CreatedAt: at(0), UpdatedAt: at(0)}
	}
	t1, err := s.CreateAppTask(ctx, newTask(f.app.GUID, "migrate"))
	must(t, err)
	t2, err := s.CreateAppTask(ctx, newTask(f.app.GUID, "seed"))
	must(t, err)
	o1, err := s.CreateAppTask(ctx, newTask(other.GUID, "first"))
	must(t, err)
	// Sequence ids count per app, from 1.
	if t1.SequenceID != 1 || t2.SequenceID != 2 || o1.SequenceID != 1 {
		t.Fatalf("sequence ids = %d, %d, %d; want 1, 2, 1", t1.SequenceID, t2.SequenceID, o1.SequenceID)
	}
	got, err := s.GetAppTask(ctx, t1.GUID)
	must(t, err)
	wantEqual(t, got, t1)
	_, err = s.GetAppTask(ctx, "nope")
	wantKind(t, err, pando.ENotFound, "task", "nope")
	_, err = s.CreateAppTask(ctx, newTask("no-such-app", "x"))
	wantKind(t, err, pando.EInvalid)

	t1.State, t1.FailureReason, t1.UpdatedAt = pando.AppTaskFailed, "APP/TASK/migrate Exited with status 1", at(5)
	must(t, s.UpdateAppTask(ctx, t1))
	got, err = s.GetAppTask(ctx, t1.GUID)
	must(t, err)
	wantEqual(t, got, t1)
	wantKind(t, s.UpdateAppTask(ctx, pando.AppTask{GUID: "nope"}), pando.ENotFound, "nope")

	all, err := s.ListAppTasks(ctx, []string{f.app.GUID}, nil)
	must(t, err)
	wantGUIDs(t, all, t1.GUID, t2.GUID)
	failed, err := s.ListAppTasks(ctx, nil, []string{pando.AppTaskFailed})
	must(t, err)
	wantGUIDs(t, failed, t1.GUID)

	must(t, s.DeleteAppTask(ctx, t2.GUID))
	must(t, s.DeleteAppTask(ctx, t2.GUID)) // again: no error
	_, err = s.GetAppTask(ctx, t2.GUID)
	wantKind(t, err, pando.ENotFound)

	// Deleting the app deletes its tasks.
	must(t, s.DeleteApp(ctx, other.GUID))
	left, err := s.ListAppTasks(ctx, []string{other.GUID}, nil)
	must(t, err)
	wantGUIDs(t, left)
}
