package auction

import (
	"fmt"
	"slices"
	"testing"

	pando "github.com/pandoplatform/pando"
)

const (
	webImage   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	otherImage = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func holding(digests ...string) func(*pando.CellState) {
	return func(c *pando.CellState) { c.Images = digests }
}

func dockerLRP(process string, index, memMB int, image string) LRPRequest {
	return LRPRequest{ProcessGUID: process, Index: index, MemoryMB: memMB, DiskMB: 256, ImageDigest: image}
}

func TestPlaceLRPs_prefersTheCellWithTheImageLayers(t *testing.T) {
	tests := []struct {
		name  string
		cells []pando.CellState
		reqs  []LRPRequest
		want  []string
	}{{
		// "a" would win the tie on its id; "b" has the layers.
		name:  "first instance goes where the layers are",
		cells: []pando.CellState{cellSpec("a"), cellSpec("b", holding(otherImage, webImage))},
		reqs:  []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want:  []string{"web/0 -> b"},
	}, {
		// The layer cache counts as used disk: the cell holding them is
		// a little fuller, and still preferred.
		name: "the cached layers' own disk does not push the instance away",
		cells: []pando.CellState{cellSpec("a"),
			cellSpec("b", used(0, 60, 0), holding(webImage))},
		reqs: []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want: []string{"web/0 -> b"},
	}, {
		name:  "another image's layers do not count",
		cells: []pando.CellState{cellSpec("a"), cellSpec("b", holding(otherImage))},
		reqs:  []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want:  []string{"web/0 -> a"},
	}, {
		name:  "an instance without an image digest is placed as before",
		cells: []pando.CellState{cellSpec("a"), cellSpec("b", holding(webImage))},
		reqs:  []LRPRequest{dockerLRP("web", 0, 256, "")},
		want:  []string{"web/0 -> a"},
	}, {
		// Scale-up: instance 0 runs on "a"; "b" and "c" are empty and
		// "c" is pulling the image.
		name: "a scale-up goes to the other cell with the layers",
		cells: []pando.CellState{cellSpec("a", running("web", 1), used(256, 256, 1), holding(webImage)),
			cellSpec("b"), cellSpec("c", holding(webImage))},
		reqs: []LRPRequest{dockerLRP("web", 1, 256, webImage)},
		want: []string{"web/1 -> c"},
	}, {
		name: "never against the spread of the instances",
		cells: []pando.CellState{cellSpec("a", running("web", 1), used(256, 256, 1), holding(webImage)),
			cellSpec("b")},
		reqs: []LRPRequest{dockerLRP("web", 1, 256, webImage)},
		want: []string{"web/1 -> b"},
	}, {
		name: "never against the zones",
		cells: []pando.CellState{cellSpec("a", inZone("z1"), running("web", 1), used(256, 256, 1)),
			cellSpec("b", inZone("z1"), holding(webImage)), cellSpec("c", inZone("z2"))},
		reqs: []LRPRequest{dockerLRP("web", 1, 256, webImage)},
		want: []string{"web/1 -> c"},
	}, {
		name: "never onto a cell without room",
		cells: []pando.CellState{cellSpec("a"),
			cellSpec("b", total(4096, 16384, 1), used(256, 256, 1), holding(webImage))},
		reqs: []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want: []string{"web/0 -> a"},
	}, {
		// Half of "b"'s memory is used: a real difference in load, not
		// a near tie.
		name: "not onto a much fuller cell",
		cells: []pando.CellState{cellSpec("a"),
			cellSpec("b", used(2048, 8192, 5), holding(webImage))},
		reqs: []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want: []string{"web/0 -> a"},
	}, {
		name:  "a container starting there outweighs the layers",
		cells: []pando.CellState{cellSpec("a"), cellSpec("b", starting(1), holding(webImage))},
		reqs:  []LRPRequest{dockerLRP("web", 0, 256, webImage)},
		want:  []string{"web/0 -> a"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lrpPlan(PlaceLRPs(tt.cells, tt.reqs)); !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestPlaceLRPs_onlyTheFirstMaxCellImagesCount(t *testing.T) {
	var many []string
	for i := range pando.MaxCellImages {
		many = append(many, fmt.Sprintf("sha256:%064d", i))
	}
	cells := []pando.CellState{cellSpec("a"), cellSpec("b", holding(append(many, webImage)...))}
	if got := lrpPlan(PlaceLRPs(cells, []LRPRequest{dockerLRP("web", 0, 256, webImage)})); got[0] != "web/0 -> a" {
		t.Errorf("an image past the first %d counted: %q", pando.MaxCellImages, got)
	}
	cells[1].Images = append([]string{webImage}, many...)
	if got := lrpPlan(PlaceLRPs(cells, []LRPRequest{dockerLRP("web", 0, 256, webImage)})); got[0] != "web/0 -> b" {
		t.Errorf("the first image did not count: %q", got)
	}
}
