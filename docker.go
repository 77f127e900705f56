package pando

import "fmt"

// ExecutionMetadata is what docker staging learns from an image's config.
// A docker droplet's execution_metadata is its JSON: CF's docker lifecycle
// shape ({"cmd", "entrypoint", "workdir", "user", "ports": [{"Port",
// "Protocol"}]}) with the image's env added.
type ExecutionMetadata struct {
	Cmd        []string `json:"cmd,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Workdir    string   `json:"workdir,omitempty"`
	User       string   `json:"user,omitempty"`
	Env        []string `json:"env,omitempty"`
	Ports      []Port   `json:"ports,omitempty"`
}

// Port is an exposed port of an image, spelled as CF's execution metadata
// spells it.
type Port struct {
	Port     int    `json:"Port"`
	Protocol string `json:"Protocol"`
}

// StartCommand is the image's own command as CF's docker lifecycle reports
// it for the web process: ENTRYPOINT then CMD joined by spaces ("" when the
// image has neither). A cell runs the two as an argv, not this string.
func (m ExecutionMetadata) StartCommand() string {
	s := ""
	for _, w := range append(append([]string(nil), m.Entrypoint...), m.Cmd...) {
		if s != "" {
			s += " "
		}
		s += w
	}
	return s
}

// DefaultPort is an app's port when its image exposes none (CF's).
const DefaultPort = 8080

// TCPPorts are the image's exposed TCP ports in order, the app's ports: the
// first is PORT and the health check's. [DefaultPort] when there is none.
func (m ExecutionMetadata) TCPPorts() []int {
	var out []int
	seen := map[int]bool{}
	for _, p := range m.Ports {
		if (p.Protocol == "" || p.Protocol == "tcp") && p.Port > 0 && p.Port <= 65535 && !seen[p.Port] {
			seen[p.Port] = true
			out = append(out, p.Port)
		}
	}
	if len(out) == 0 {
		out = []int{DefaultPort}
	}
	return out
}

// ImageCredentials authenticate a cell's layer pulls of a private image:
// the docker package's, opened from the CCDB (where the password is
// sealed) into memory only. They print without the password.
type ImageCredentials struct {
	Username string
	Password string
}

// String never shows the password, so a stray %v (of the struct, a
// pointer to it or a DesiredLRP holding it) cannot leak it.
func (c ImageCredentials) String() string {
	return fmt.Sprintf("user %q, password ***", c.Username)
}

// GoString hides the password from %#v too.
func (c ImageCredentials) GoString() string { return c.String() }

// ImageDigest is the manifest digest a pinned image reference names
// ("sha256:..." of "REPO@sha256:..."), or "" when image is not pinned.
func ImageDigest(image string) string {
	const algo = "sha256:"
	for i := 0; i < len(image); i++ {
		if image[i] != '@' {
			continue
		}
		if d := image[i+1:]; len(d) > len(algo) && d[:len(algo)] == algo {
			return d
		}
		return ""
	}
	return ""
}
