package failurelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	pando "github.com/pandoplatform/pando"
)

func TestOf_logsTheFailuresFieldsNotAStructDump(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("instance crashed", "crash", Of(&pando.Failure{Kind: pando.FailureExited, ExitCode: 3}))
	log.Info("no failure", "crash", Of(nil))
	out := buf.String()
	if !strings.Contains(out, "crash.kind=exited crash.exit_code=3") {
		t.Errorf("log line lacks the failure's fields:\n%s", out)
	}
	for _, bad := range []string{"&{", "LimitMB", "limit_mb", "Hint"} {
		if strings.Contains(out, bad) {
			t.Errorf("log line holds %q:\n%s", bad, out)
		}
	}
}
