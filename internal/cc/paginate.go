package cc

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/pandoplatform/pando"
)

// maxPerPage is CF's per_page cap; the cf CLI asks for 5000.
const maxPerPage = 5000

// page is a parsed page request.
type page struct {
	Page    int
	PerPage int
	OrderBy string // e.g. "created_at", "-created_at", "name"
}

// badQuery is CF's 400 for a query parameter it cannot use.
func badQuery(format string, args ...any) error {
	e := pando.Errorf(pando.EBadRequest, format, args...)
	e.Code, e.Title = 10005, "CF-BadQueryParameter"
	return e
}

func parsePage(q url.Values) (page, error) {
	p := page{Page: 1, PerPage: 50, OrderBy: q.Get("order_by")}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badQuery("The query parameter is invalid: Page must be greater than 0")
		}
		p.Page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPerPage {
			return p, badQuery("The query parameter is invalid: Per page must be between 1 and %d", maxPerPage)
		}
		p.PerPage = n
	}
	return p, nil
}

// sortable is what order_by can sort on.
type sortable struct {
	name      string
	state     string
	createdAt time.Time
	updatedAt time.Time
	position  int
}

// paginate sorts items per p.OrderBy (created_at by default), slices out the
// page and writes CF's list body with absolute links.
func paginate[T any](a *API, w http.ResponseWriter, r *http.Request, items []T, key func(T) sortable, present func(T) any) {
	paginateWith(a, w, r, items, key, present, nil)
}

// paginateWith is paginate with an "included" object made from the page's
// items (include=user and the like), when include is not nil.
func paginateWith[T any](a *API, w http.ResponseWriter, r *http.Request, items []T, key func(T) sortable, present func(T) any, include func([]T) map[string]any) {
	p, err := parsePage(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	order := p.OrderBy
	desc := false
	if len(order) > 0 && order[0] == '-' {
		desc = true
		order = order[1:]
	}
	if order != "" {
		switch order {
		case "created_at", "updated_at", "name", "position", "state":
		default:
			a.writeError(w, r, badQuery("The query parameter is invalid: Order by can only be: 'created_at', 'updated_at', 'name', 'state', 'position'"))
			return
		}
		less := func(ki, kj sortable) bool {
			switch order {
			case "name":
				return ki.name < kj.name
			case "updated_at":
				return ki.updatedAt.Before(kj.updatedAt)
			case "position":
				return ki.position < kj.position
			case "state":
				return ki.state < kj.state
			default:
				return ki.createdAt.Before(kj.createdAt)
			}
		}
		sort.SliceStable(items, func(i, j int) bool {
			if desc {
				return less(key(items[j]), key(items[i]))
			}
			return less(key(items[i]), key(items[j]))
		})
	}
	total := len(items)
	pages := (total + p.PerPage - 1) / p.PerPage
	if pages == 0 {
		pages = 1
	}
	start := (p.Page - 1) * p.PerPage
	end := start + p.PerPage
	if start > total {
		start = total
	}
	if end > total {
		end = total
	}
	resources := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		resources = append(resources, present(it))
	}
	pageURL := func(n int) map[string]any {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(p.PerPage))
		return link(a.url(r.URL.Path) + "?" + q.Encode())
	}
	var next, prev any
	if p.Page < pages {
		next = pageURL(p.Page + 1)
	}
	if p.Page > 1 {
		prev = pageURL(p.Page - 1)
	}
	body := map[string]any{
		"pagination": map[string]any{
			"total_results": total,
			"total_pages":   pages,
			"first":         pageURL(1),
			"last":          pageURL(pages),
			"next":          next,
			"previous":      prev,
		},
		"resources": resources,
	}
	if include != nil {
		body["included"] = include(items[start:end])
	}
	writeJSON(w, http.StatusOK, body)
}

// emptyList answers a CF list with no resources.
func (a *API) emptyList(w http.ResponseWriter, r *http.Request) {
	paginate(a, w, r, []struct{}{}, func(struct{}) sortable { return sortable{} }, func(struct{}) any { return nil })
}
