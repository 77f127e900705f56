package pando

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
