package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// Marks are the instants a push passes through. Client marks are taken by
// the bench; stg* and cell* come from the timestamps of the STG and CELL
// log lines the cell emits (same host, same clock).
const (
	mStart        = "start"           // push begins
	mAppReady     = "app"             // apply_manifest done, app GUID known
	mMatched      = "matched"         // resource_matches answered
	mZipped       = "zipped"          // the zip of the missing files is written
	mPkgCreated   = "package_created" // POST /v3/packages answered
	mPackageReady = "package_ready"   // upload answered READY
	mBuildCreated = "build_created"   // POST /v3/builds answered
	mStgDownload  = "stg_download"    // "Downloading app package..."
	mStgContainer = "stg_container"   // "Creating container..."
	mStgBuilder   = "stg_builder"     // the builder's first "----->" line
	mStgRelease   = "stg_release"     // "-----> Running release ..."
	mStgWritten   = "stg_written"     // "-----> Droplet written ..."
	mStgExit      = "stg_exit"        // "Exit status N"
	mStgDroplet   = "stg_droplet"     // "Uploading droplet..."
	mStgUploaded  = "stg_uploaded"    // "Uploaded droplet (...)"
	mStgComplete  = "stg_complete"    // "Uploading complete"
	mStaged       = "staged"          // build STAGED seen by the client
	mRestarted    = "restarted"       // current droplet set and restart answered
	mCellCreating = "cell_creating"   // "Cell X creating container for instance Y"
	mCellCreated  = "cell_created"    // "Cell X successfully created container ..."
	mCellHealthy  = "cell_healthy"    // "Container became healthy"
	mRunning      = "running"         // stats show every instance RUNNING
	mFirst200     = "first_200"       // GET / through the router answered 200
	mCLIExited    = "cli_exited"      // `pando push` returned
)

// cellMarks are the marks read from the log stream.
var cellMarks = []string{mStgDownload, mStgContainer, mStgBuilder, mStgRelease, mStgWritten, mStgExit,
	mStgDroplet, mStgUploaded, mStgComplete, mCellCreating, mCellCreated, mCellHealthy}

// step is a named interval between two marks.
type step struct {
	Name, From, To string
}

// mainSteps are the breakdown the issue asks for; they tile the push from
// start to first 200.
var mainSteps = []step{
	{"create", mStart, mAppReady},
	{"upload", mAppReady, mPackageReady},
	{"stage", mPackageReady, mStgDroplet},
	{"droplet", mStgDroplet, mStaged},
	{"start", mStaged, mRunning},
	{"route", mRunning, mFirst200},
}

// detailSteps split upload, stage, droplet and start by the client's own
// marks and the cell's log lines; they tile the push from app to first 200.
var detailSteps = []step{
	{"resource match", mAppReady, mMatched},
	{"zip (client)", mMatched, mZipped},
	{"package create", mZipped, mPkgCreated},
	{"upload + package assembly", mPkgCreated, mPackageReady},
	{"build create + task placed", mPackageReady, mStgDownload},
	{"package download + unzip", mStgDownload, mStgContainer},
	{"staging container start", mStgContainer, mStgBuilder},
	{"buildpack detect..finalize", mStgBuilder, mStgRelease},
	{"release + droplet tgz", mStgRelease, mStgWritten},
	{"builder exit", mStgWritten, mStgExit},
	{"droplet upload", mStgExit, mStgUploaded},
	{"build cache upload", mStgUploaded, mStgComplete},
	{"task done -> STAGED seen", mStgComplete, mStaged},
	{"set droplet + restart -> cell", mStaged, mCellCreating},
	{"droplet untar + runc run", mCellCreating, mCellCreated},
	{"app boot + health check", mCellCreated, mCellHealthy},
	{"healthy -> RUNNING seen", mCellHealthy, mRunning},
	{"RUNNING -> first 200", mRunning, mFirst200},
}

// cliSteps are what a subprocess `pando push` shows.
var cliSteps = []step{
	{"pando push", mStart, mCLIExited},
	{"curl", mCLIExited, mFirst200},
}

// marks holds a run's instants by name.
type marks map[string]time.Time

// between returns the interval of s, false when either mark is missing.
func (m marks) between(s step) (time.Duration, bool) {
	from, ok1 := m[s.From]
	to, ok2 := m[s.To]
	if !ok1 || !ok2 {
		return 0, false
	}
	return to.Sub(from), true
}

// markOf maps a log line to the mark it stands for, or "".
func markOf(l api.LogLine) string {
	p := strings.TrimSpace(l.Payload)
	switch l.SourceType {
	case "STG":
		switch {
		case strings.HasPrefix(p, "Downloading app package"):
			return mStgDownload
		case strings.HasPrefix(p, "Creating container"):
			return mStgContainer
		case strings.HasPrefix(p, "-----> Running release"):
			return mStgRelease
		case strings.HasPrefix(p, "-----> Droplet written"):
			return mStgWritten
		case strings.HasPrefix(p, "----->"):
			return mStgBuilder
		case strings.HasPrefix(p, "Exit status "):
			return mStgExit
		case p == "Uploading droplet...":
			return mStgDroplet
		case strings.HasPrefix(p, "Uploaded droplet"):
			return mStgUploaded
		case p == "Uploading complete":
			return mStgComplete
		}
	case "CELL":
		switch {
		case strings.Contains(p, " successfully created container for instance "):
			return mCellCreated
		case strings.Contains(p, " creating container for instance "):
			return mCellCreating
		case p == "Container became healthy":
			return mCellHealthy
		}
	}
	return ""
}

// logTap follows an app's STG and CELL lines and keeps the first instant
// of each mark.
type logTap struct {
	mu      sync.Mutex
	marks   marks
	changed chan struct{} // closed and replaced on each new mark
	stopped chan struct{}
	err     error
	cancel  context.CancelFunc
	log     *slog.Logger
}

// tapLogs starts following appGUID's log stream from `from`. connected is
// closed once the server accepted the stream.
func tapLogs(ctx context.Context, c *api.Client, appGUID string, from time.Time, log *slog.Logger) (*logTap, <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	t := &logTap{marks: marks{}, changed: make(chan struct{}), stopped: make(chan struct{}), cancel: cancel, log: log}
	connected := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(t.stopped)
		err := c.FollowLogs(ctx, appGUID, []string{"STG", "CELL"}, from.UnixNano(),
			func() { once.Do(func() { close(connected) }) },
			t.add)
		t.mu.Lock()
		if ctx.Err() == nil {
			t.err = err
		}
		t.mu.Unlock()
	}()
	return t, connected
}

func (t *logTap) add(l api.LogLine) {
	name := markOf(l)
	t.log.Debug("log line", "source_type", l.SourceType, "time", l.Time().Format("15:04:05.000000"), "mark", name, "payload", l.Payload)
	if name == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.marks[name]; ok {
		return
	}
	t.marks[name] = l.Time()
	close(t.changed)
	t.changed = make(chan struct{})
}

// await waits until every named mark has arrived, the stream ends or the
// deadline passes; it reports whether all arrived.
func (t *logTap) await(ctx context.Context, timeout time.Duration, names ...string) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		all := true
		for _, n := range names {
			if _, ok := t.marks[n]; !ok {
				all = false
				break
			}
		}
		changed := t.changed
		t.mu.Unlock()
		if all {
			return true
		}
		select {
		case <-changed:
		case <-t.stopped:
			return false
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// stop ends the stream and copies the marks into m.
func (t *logTap) stop(m marks) error {
	t.cancel()
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.marks {
		m[k] = v
	}
	return t.err
}
