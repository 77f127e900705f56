package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// CF's quota refusals ("memory quota_exceeded") are explained, each
// reason in words, with what to do.
func TestReportError_explainsQuotaRefusals(t *testing.T) {
	const todo = ": lower -m or -i, scale down or stop other apps, or ask for a bigger quota; 'pando quotas' and 'pando space-quotas' show the limits)"
	for detail, want := range map[string]string{
		"memory quota_exceeded":                                                 "(the org's memory quota has too little left" + todo,
		"memory space_quota_exceeded":                                           "(the space's memory quota has too little left" + todo,
		"memory instance_memory_limit_exceeded":                                 "(the org's quota caps the memory of one instance" + todo,
		"memory space_instance_memory_limit_exceeded":                           "(the space's quota caps the memory of one instance" + todo,
		"memory quota_exceeded, app_instance_limit app_instance_limit_exceeded": "(the org's memory quota has too little left; the org's quota caps the number of app instances" + todo,
		"app_instance_limit space_app_instance_limit_exceeded":                  "(the space's quota caps the number of app instances" + todo,
	} {
		var buf bytes.Buffer
		ReportError(&buf, errors.New("scale: "+detail+" (CF-UnprocessableEntity)"))
		if got := buf.String(); !strings.HasSuffix(got, want+"\n") {
			t.Errorf("%s:\n got %q\nwant it to end with %q", detail, got, want)
		}
	}
	var buf bytes.Buffer
	ReportError(&buf, errors.New("app 'web' not found"))
	if strings.Contains(buf.String(), "quota") {
		t.Errorf("a hint on an error that is no quota refusal: %q", buf.String())
	}
}
