package pando

import (
	"context"
	"time"
)

// ServiceInstance is a user-provided service instance (CF's
// user_provided_service_instances): credentials an operator or developer
// hands to apps through bindings. Credentials is sealed (internal/secrets)
// by the API before it is stored; the store never sees it in the clear.
type ServiceInstance struct {
	GUID            string
	Name            string
	SpaceGUID       string
	Type            string // "user-provided"
	Credentials     string // sealed JSON object, "" for none
	SyslogDrainURL  string
	RouteServiceURL string
	Tags            []string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ServiceInstanceUserProvided is the only service instance type Pando has.
const ServiceInstanceUserProvided = "user-provided"

// ServiceBinding is a service credential binding of type "app" (an app's
// binding, in its VCAP_SERVICES from its next start).
type ServiceBinding struct {
	GUID         string
	Type         string // "app"
	Name         string
	AppGUID      string
	InstanceGUID string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ServiceRouteBinding binds a route to a user-provided service instance
// with a route service URL (cf bind-route-service): the router sends the
// route's requests through that URL first.
type ServiceRouteBinding struct {
	GUID         string
	RouteGUID    string
	InstanceGUID string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ServiceRouteBindingFilter selects route bindings; empty slices match
// all.
type ServiceRouteBindingFilter struct {
	GUIDs         []string
	RouteGUIDs    []string
	InstanceGUIDs []string
}

// ServiceInstanceFilter selects service instances; empty slices match all.
type ServiceInstanceFilter struct {
	GUIDs      []string
	Names      []string
	SpaceGUIDs []string
}

// ServiceBindingFilter selects bindings; empty slices match all.
type ServiceBindingFilter struct {
	GUIDs         []string
	Names         []string
	AppGUIDs      []string
	InstanceGUIDs []string
	// Running selects the bindings the apps' running revisions have
	// (pinned at their last start, unbound since or not) instead of the
	// live ones.
	Running bool
}

// ServiceStore keeps service instances and their bindings.
type ServiceStore interface {
	// CreateServiceInstance fails with EConflict for a name taken in the
	// space.
	CreateServiceInstance(ctx context.Context, si ServiceInstance) error
	GetServiceInstance(ctx context.Context, guid string) (ServiceInstance, error)
	// UpdateServiceInstance replaces name, credentials, URLs and tags.
	UpdateServiceInstance(ctx context.Context, si ServiceInstance) error
	// DeleteServiceInstance deletes an instance and its bindings.
	DeleteServiceInstance(ctx context.Context, guid string) error
	ListServiceInstances(ctx context.Context, f ServiceInstanceFilter) ([]ServiceInstance, error)

	// CreateServiceBinding fails with EConflict when the app is bound to
	// the instance already, EInvalid when either does not exist.
	CreateServiceBinding(ctx context.Context, b ServiceBinding) error
	GetServiceBinding(ctx context.Context, guid string) (ServiceBinding, error)
	// DeleteServiceBinding unbinds; the running revision of the app keeps
	// a binding it started with until PinServiceBindings.
	DeleteServiceBinding(ctx context.Context, guid string) error
	// PinServiceBindings makes the app's live bindings the ones its
	// running revision has; called when the app (re)starts.
	PinServiceBindings(ctx context.Context, appGUID string) error
	ListServiceBindings(ctx context.Context, f ServiceBindingFilter) ([]ServiceBinding, error)

	// CreateServiceRouteBinding fails with EConflict when the route has a
	// binding already, EInvalid when the route or instance does not
	// exist. Deleting either deletes the binding.
	CreateServiceRouteBinding(ctx context.Context, b ServiceRouteBinding) error
	GetServiceRouteBinding(ctx context.Context, guid string) (ServiceRouteBinding, error)
	DeleteServiceRouteBinding(ctx context.Context, guid string) error
	ListServiceRouteBindings(ctx context.Context, f ServiceRouteBindingFilter) ([]ServiceRouteBinding, error)
}
