package bbs

import (
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestMemState_evacueesOfFollowsPutsAndDeletes(t *testing.T) {
	m := newMemState()
	rec := func(guid string, index int, evacuating bool) actualRecord {
		return actualRecord{ActualLRP: pando.ActualLRP{ProcessGUID: "p", InstanceGUID: guid, Index: index}, evacuating: evacuating}
	}
	m.putActual(rec("a0", 0, false))
	m.putActual(rec("e0", 0, true))
	m.putActual(rec("e1", 1, true))
	m.putActual(rec("x0", 0, true))
	if got := guids(m.evacueesOf("p", 0)); got != "e0,x0" {
		t.Errorf("evacuees of index 0 = %s, want e0,x0", got)
	}
	m.putActual(rec("x0", 0, false)) // no longer evacuating
	m.deleteActual("e1")
	if got := guids(m.evacueesOf("p", 0)); got != "e0" {
		t.Errorf("evacuees of index 0 = %s, want e0", got)
	}
	if got := m.evacueesOf("p", 1); len(got) != 0 {
		t.Errorf("evacuees of index 1 = %v, want none after the delete", got)
	}
	m.deleteActual("e0")
	if len(m.evacuees) != 0 {
		t.Errorf("evacuee index holds %v after every evacuee went", m.evacuees)
	}
}

func guids(recs []actualRecord) string {
	s := ""
	for _, g := range []string{"a0", "e0", "e1", "x0"} {
		for _, r := range recs {
			if r.InstanceGUID == g {
				if s != "" {
					s += ","
				}
				s += g
			}
		}
	}
	return s
}
