package cc

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/pandoplatform/pando"
)

// maxResourcesBytes bounds the JSON of an upload's `resources` part (all
// the app's cached files), maxMatchBytes that of a resource match (clients
// ask in batches: 1000 files, some 200 KB, from the cf and pando CLIs).
const (
	maxResourcesBytes = 64 << 20
	maxMatchBytes     = 16 << 20
)

// resourcesReader counts what the decoder reads, to tell a body past its
// bound from a malformed one.
type resourcesReader struct {
	r   io.Reader
	max int64
	n   int64
	err error // the reader's failure, io.EOF aside
}

func (c *resourcesReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// resourceDecoder reads a list of files one entry at a time, so that
// what it holds is bounded by maxResources entries, not by what the body
// would decode to: a body of empty objects (3 bytes each, ~90 decoded)
// read whole would make one request cost the API gigabytes.
type resourceDecoder struct {
	cr  resourcesReader
	dec *json.Decoder
	// part: the list is an upload's resources part, whose errors CF
	// words differently from resource_matches'.
	part bool
}

func newResourceDecoder(r io.Reader, part bool) *resourceDecoder {
	limit := int64(maxMatchBytes)
	if part {
		limit = maxResourcesBytes
	}
	d := &resourceDecoder{cr: resourcesReader{r: io.LimitReader(r, limit+1), max: limit}, part: part}
	d.dec = json.NewDecoder(&d.cr)
	return d
}

// fail explains a failed read: the body past its bound, the reader's own
// failure, or a body that is not the JSON asked for (as CF words each).
func (d *resourceDecoder) fail() error {
	switch {
	case d.cr.n > d.cr.max:
		return pando.Errorf(pando.ETooLarge, "The resources list exceeds %s", humanBytes(d.cr.max))
	case d.cr.err != nil && d.part:
		return pando.Errorf(pando.EBadRequest, "Reading resources: %v", d.cr.err)
	case d.cr.err != nil:
		return pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: %v", d.cr.err)
	case d.part:
		return invalid("Resources must be a JSON array of files")
	}
	return pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: invalid request body")
}

// list reads a JSON array of files (null: none). Past maxResources
// entries it stops reading: 422, too many resources.
func (d *resourceDecoder) list() ([]resourceEntry, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.fail()
	}
	if tok == nil {
		return nil, nil
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return nil, d.fail()
	}
	var out []resourceEntry
	for d.dec.More() {
		if len(out) == maxResources {
			return nil, invalid("Too many resources: at most %d per request", maxResources)
		}
		var e resourceEntry
		if err := d.dec.Decode(&e); err != nil {
			return nil, d.fail()
		}
		out = append(out, e)
	}
	if _, err := d.dec.Token(); err != nil { // the closing ']'
		return nil, d.fail()
	}
	return out, nil
}

// matchRequest reads resource_matches' body, {"resources": [...]}; other
// keys are skipped.
func (d *resourceDecoder) matchRequest() ([]resourceEntry, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.fail()
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, d.fail()
	}
	var out []resourceEntry
	for d.dec.More() {
		key, err := d.dec.Token()
		if err != nil {
			return nil, d.fail()
		}
		if key == "resources" {
			if out, err = d.list(); err != nil {
				return nil, err
			}
			continue
		}
		var skip json.RawMessage
		if err := d.dec.Decode(&skip); err != nil {
			return nil, d.fail()
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing '}'
		return nil, d.fail()
	}
	return out, nil
}

// readResourcesPart reads an upload's `resources` part: a JSON array of
// files, or nothing.
func readResourcesPart(part io.Reader) ([]resourceEntry, error) {
	br := bufio.NewReader(part)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil, nil // an empty part: no cached files
		}
		if err != nil {
			return nil, pando.Errorf(pando.EBadRequest, "Reading resources: %v", err)
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			_ = br.UnreadByte()
			break
		}
	}
	return newResourceDecoder(br, true).list()
}
