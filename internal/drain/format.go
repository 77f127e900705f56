package drain

import (
	"strconv"
	"unicode/utf8"

	"github.com/pandoplatform/pando"
)

// RFC 5424 field limits (section 6).
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
)

// appendRFC5424 appends e as one RFC 5424 message the way CF's syslog
// agent writes it: priority user.info (14) for stdout and user.err (11)
// for stderr, HOSTNAME org.space.app, APP-NAME the app guid, PROCID the
// source type and instance ("[APP/PROC/WEB/0]"), no MSGID or structured
// data, and the line ending in a newline.
func appendRFC5424(b []byte, e *pando.LogEnvelope, hostname string) []byte {
	pri := "<14>1 "
	if e.Type == "ERR" {
		pri = "<11>1 "
	}
	b = append(b, pri...)
	b = e.Timestamp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = appendField(b, hostname, maxHostname)
	b = append(b, ' ')
	b = appendField(b, e.SourceID, maxAppName)
	b = append(b, ' ')
	proc := "[" + e.SourceType
	if e.InstanceID != "" {
		proc += "/" + e.InstanceID
	}
	b = appendField(b, proc+"]", maxProcID)
	b = append(b, " - - "...)
	b = append(b, e.Payload...)
	if len(e.Payload) == 0 || e.Payload[len(e.Payload)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// appendField appends a header field: printable US-ASCII only (others
// become '_'), at most max bytes, "-" when empty.
func appendField(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendOctetCounted frames msg as RFC 6587's octet counting does:
// "LEN SP MSG".
func appendOctetCounted(b, msg []byte) []byte {
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// Hostname is CF's drain HOSTNAME: org.space.app, each name with
// what a hostname may not hold replaced.
func Hostname(org, space, app string) string {
	clean := func(s string) string {
		out := make([]byte, 0, len(s))
		for _, r := range s {
			switch {
			case r < utf8.RuneSelf && r > 32 && r < 127:
				out = append(out, byte(r))
			default:
				out = append(out, '-')
			}
		}
		return string(out)
	}
	return clean(org) + "." + clean(space) + "." + clean(app)
}
