package cell

import (
	"context"
	"time"

	"github.com/pandoplatform/pando"
)

// What the rep tells others: instance states to the reporter (the BBS),
// log lines to the log sink.

// reportTimeout bounds one call to the reporter.
const reportTimeout = 30 * time.Second

// logSyncTimeout bounds the wait for a staging's log lines to reach the
// log store before its completion is reported.
const logSyncTimeout = 10 * time.Second

func (r *Rep) currentReporter() pando.CellReporter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reporter
}

func (r *Rep) reportActual(a pando.ActualLRP) {
	rep := r.currentReporter()
	if rep == nil {
		r.log.Warn("no reporter: dropping instance state", "instance_guid", a.InstanceGUID, "state", a.State)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), reportTimeout)
	defer cancel()
	if err := rep.ActualLRPChanged(ctx, a); err != nil {
		r.log.Error("report instance state", "process_guid", a.ProcessGUID, "instance_guid", a.InstanceGUID, "state", a.State, "error", err)
	}
}

func (r *Rep) reportRemoved(processGUID, instanceGUID string) {
	rep := r.currentReporter()
	if rep == nil {
		r.log.Warn("no reporter: dropping instance removal", "instance_guid", instanceGUID)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), reportTimeout)
	defer cancel()
	if err := rep.ActualLRPRemoved(ctx, processGUID, instanceGUID); err != nil {
		r.log.Error("report instance removed", "process_guid", processGUID, "instance_guid", instanceGUID, "error", err)
	}
}

// emit sends one log line.
func (r *Rep) emit(sourceID, sourceType, instanceID, typ, msg string) {
	r.logs.Emit(pando.LogEnvelope{
		Timestamp:  time.Now(),
		SourceID:   sourceID,
		InstanceID: instanceID,
		SourceType: sourceType,
		Type:       typ,
		Payload:    []byte(msg),
	})
}

type discardSink struct{}

func (discardSink) Emit(pando.LogEnvelope) {}
