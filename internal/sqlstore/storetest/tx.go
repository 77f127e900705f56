package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

func testTimestamps(t *testing.T, s pando.Store) {
	ctx := t.Context()

	// Zero timestamps on create become "now".
	before := time.Now()
	o := pando.Org{GUID: newGUID("org"), Name: "stamped"}
	must(t, s.CreateOrg(ctx, o))
	after := time.Now()
	got, err := s.GetOrg(ctx, o.GUID)
	must(t, err)
	for name, ts := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if ts.Before(before.Add(-time.Second)) || ts.After(after.Add(time.Second)) {
			t.Errorf("zero %s stored as %v, want between %v and %v", name, ts, before, after)
		}
	}

	// Caller-set timestamps round-trip to the nanosecond, whatever their
	// zone, including before 1970.
	sp := pando.Space{GUID: newGUID("space"), Name: "s", OrgGUID: o.GUID}
	must(t, s.CreateSpace(ctx, sp))
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	app := newApp(sp.GUID, "t")
	app.CreatedAt = time.Date(1969, 7, 20, 20, 17, 40, 999999999, zone)
	app.UpdatedAt = time.Date(2199, 12, 31, 23, 59, 59, 1, zone)
	must(t, s.CreateApp(ctx, app))
	gotApp, err := s.GetApp(ctx, app.GUID)
	must(t, err)
	if !gotApp.CreatedAt.Equal(app.CreatedAt) || !gotApp.UpdatedAt.Equal(app.UpdatedAt) {
		t.Errorf("timestamps came back %v / %v, want %v / %v", gotApp.CreatedAt, gotApp.UpdatedAt, app.CreatedAt, app.UpdatedAt)
	}

	// Update keeps CreatedAt and fills a zero UpdatedAt with now.
	upd := gotApp
	upd.CreatedAt = at(999)
	upd.UpdatedAt = time.Time{}
	before = time.Now()
	must(t, s.UpdateApp(ctx, upd))
	gotApp, err = s.GetApp(ctx, app.GUID)
	must(t, err)
	if !gotApp.CreatedAt.Equal(app.CreatedAt) {
		t.Errorf("update changed CreatedAt to %v, want %v kept", gotApp.CreatedAt, app.CreatedAt)
	}
	if gotApp.UpdatedAt.Before(before.Add(-time.Second)) || gotApp.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("zero UpdatedAt on update stored as %v, want now", gotApp.UpdatedAt)
	}
}

func testCreationOrder(t *testing.T, s pando.Store) {
	ctx := t.Context()
	// Inserted c, a, b, d with c and d sharing a timestamp: lists go by
	// CreatedAt, then insertion order.
	c := pando.Org{GUID: newGUID("org"), Name: "c", CreatedAt: at(5)}
	a := pando.Org{GUID: newGUID("org"), Name: "a", CreatedAt: at(1)}
	b := pando.Org{GUID: newGUID("org"), Name: "b", CreatedAt: at(3)}
	d := pando.Org{GUID: newGUID("org"), Name: "d", CreatedAt: at(5)}
	for _, o := range []pando.Org{c, a, b, d} {
		must(t, s.CreateOrg(ctx, o))
	}
	got, err := s.ListOrgs(ctx, nil, nil)
	must(t, err)
	wantGUIDs(t, got, a.GUID, b.GUID, c.GUID, d.GUID)

	// Zero timestamps (now) keep insertion order too.
	var want []string
	for range 5 {
		o := pando.Org{GUID: newGUID("org"), Name: newGUID("n")}
		must(t, s.CreateOrg(ctx, o))
		want = append(want, o.GUID)
	}
	got, err = s.ListOrgs(ctx, want, nil)
	must(t, err)
	wantGUIDs(t, got, want...)

	empty, err := s.ListApps(ctx, pando.AppFilter{})
	must(t, err)
	if len(empty) != 0 {
		t.Fatalf("empty store lists %d apps", len(empty))
	}
}

var errBoom = errors.New("boom")

func testTxCommit(t *testing.T, s pando.Store) {
	ctx := t.Context()
	o := pando.Org{GUID: newGUID("org"), Name: "tx"}
	sp := pando.Space{GUID: newGUID("space"), Name: "s", OrgGUID: o.GUID}
	err := s.InTx(ctx, func(tx pando.Store) error {
		if err := tx.CreateOrg(ctx, o); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if _, err := tx.GetOrg(ctx, o.GUID); err != nil {
			return err
		}
		return tx.CreateSpace(ctx, sp)
	})
	must(t, err)
	_, err = s.GetOrg(ctx, o.GUID)
	must(t, err)
	_, err = s.GetSpace(ctx, sp.GUID)
	must(t, err)
}

func testTxRollback(t *testing.T, s pando.Store) {
	ctx := t.Context()
	f := seed(t, s)
	o := pando.Org{GUID: newGUID("org"), Name: "doomed"}
	err := s.InTx(ctx, func(tx pando.Store) error {
		must(t, tx.CreateOrg(ctx, o))
		upd := f.app
		upd.Name = "renamed-in-tx"
		must(t, tx.UpdateApp(ctx, upd))
		must(t, tx.DeleteApp(ctx, f.app.GUID))
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx returned %v, want the callback's error", err)
	}
	_, err = s.GetOrg(ctx, o.GUID)
	wantKind(t, err, pando.ENotFound)
	got, err := s.GetApp(ctx, f.app.GUID)
	must(t, err)
	wantEqual(t, got, f.app)

	// A failed statement (a conflict) aborts the whole transaction when the
	// callback returns its error.
	o2 := pando.Org{GUID: newGUID("org"), Name: "first-write"}
	err = s.InTx(ctx, func(tx pando.Store) error {
		if err := tx.CreateOrg(ctx, o2); err != nil {
			return err
		}
		return tx.CreateApp(ctx, newApp(f.space.GUID, f.app.Name))
	})
	wantKind(t, err, pando.EConflict)
	_, err = s.GetOrg(ctx, o2.GUID)
	wantKind(t, err, pando.ENotFound)
}

func testTxPanic(t *testing.T, s pando.Store) {
	ctx := t.Context()
	o := pando.Org{GUID: newGUID("org"), Name: "panicky"}
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Fatalf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.InTx(ctx, func(tx pando.Store) error {
			must(t, tx.CreateOrg(ctx, o))
			panic(errBoom)
		})
	}()
	_, err := s.GetOrg(ctx, o.GUID)
	wantKind(t, err, pando.ENotFound)
	// The store is usable afterwards.
	must(t, s.CreateOrg(ctx, o))
}

func testTxNested(t *testing.T, s pando.Store) {
	ctx := t.Context()
	outer := pando.Org{GUID: newGUID("org"), Name: "outer"}
	inner := pando.Org{GUID: newGUID("org"), Name: "inner"}

	// Inner writes belong to the outer transaction: rolled back with it.
	err := s.InTx(ctx, func(tx pando.Store) error {
		must(t, tx.CreateOrg(ctx, outer))
		if err := tx.InTx(ctx, func(tx2 pando.Store) error {
			if _, err := tx2.GetOrg(ctx, outer.GUID); err != nil {
				return err
			}
			return tx2.CreateOrg(ctx, inner)
		}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx returned %v, want the callback's error", err)
	}
	for _, o := range []pando.Org{outer, inner} {
		_, err := s.GetOrg(ctx, o.GUID)
		wantKind(t, err, pando.ENotFound)
	}

	// An inner error propagates and, returned by the outer callback, undoes
	// everything; committed, everything lands.
	err = s.InTx(ctx, func(tx pando.Store) error {
		must(t, tx.CreateOrg(ctx, outer))
		return tx.InTx(ctx, func(tx2 pando.Store) error { return errBoom })
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx returned %v, want the inner callback's error", err)
	}
	_, err = s.GetOrg(ctx, outer.GUID)
	wantKind(t, err, pando.ENotFound)

	must(t, s.InTx(ctx, func(tx pando.Store) error {
		must(t, tx.CreateOrg(ctx, outer))
		return tx.InTx(ctx, func(tx2 pando.Store) error { return tx2.CreateOrg(ctx, inner) })
	}))
	for _, o := range []pando.Org{outer, inner} {
		_, err := s.GetOrg(ctx, o.GUID)
		must(t, err)
	}
}
