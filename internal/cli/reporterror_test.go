package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
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

// A host name that does not resolve says so; a *.localhost one, which
// only some resolvers map to loopback, says to use the IP address.
func TestReportError_namesAnUnresolvedHost(t *testing.T) {
	for name, want := range map[string]string{
		"api.localhost": "(this machine does not resolve *.localhost names: use the API's IP address, e.g. 'pando login -a http://127.0.0.1:9022')\n",
		"api.example":   "(no such host name: is the API URL right? 'pando endpoint' shows it)\n",
	} {
		dnsErr := &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		err := fmt.Errorf("read API root: cannot reach the API at http://%s:9022: %w", name, &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr})
		var buf bytes.Buffer
		ReportError(&buf, err)
		if !strings.HasSuffix(buf.String(), want) {
			t.Errorf("%s:\n got %q\nwant it to end with %q", name, buf.String(), want)
		}
	}
}
