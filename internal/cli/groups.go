package cli

import "github.com/spf13/cobra"

// The groups `pando --help` lists the verbs in, as the cf CLI's help
// does. GroupPlatform is also for the root's own server and cell verbs.
const (
	groupStart    = "start"
	groupApps     = "apps"
	groupServices = "services"
	groupOrgs     = "orgs"
	groupUsers    = "users"
	groupRoutes   = "routes"
	GroupPlatform = "platform"
)

// Groups are the help groups of the verbs NewCommands returns; add them to
// the root command (cobra refuses a verb whose group its parent lacks).
func Groups() []*cobra.Group {
	return []*cobra.Group{
		{ID: groupStart, Title: "Getting started:"},
		{ID: groupApps, Title: "Apps and tasks:"},
		{ID: groupServices, Title: "Services:"},
		{ID: groupOrgs, Title: "Orgs, spaces and quotas:"},
		{ID: groupUsers, Title: "Users and roles:"},
		{ID: groupRoutes, Title: "Domains and routes:"},
		{ID: GroupPlatform, Title: "Platform:"},
	}
}

// verbGroup is each verb's help group; a test keeps every verb in one.
var verbGroup = map[string]string{
	"endpoint": groupStart, "login": groupStart, "logout": groupStart, "target": groupStart,

	"push": groupApps, "apps": groupApps, "app": groupApps, "logs": groupApps, "scale": groupApps,
	"start": groupApps, "stop": groupApps, "restart": groupApps, "restage": groupApps, "delete": groupApps,
	"set-env": groupApps, "unset-env": groupApps, "env": groupApps, "events": groupApps,
	"run-task": groupApps, "tasks": groupApps, "terminate-task": groupApps,

	"create-user-provided-service": groupServices, "update-user-provided-service": groupServices,
	"services": groupServices, "bind-service": groupServices, "unbind-service": groupServices, "delete-service": groupServices,

	"orgs": groupOrgs, "spaces": groupOrgs, "create-org": groupOrgs, "delete-org": groupOrgs,
	"create-space": groupOrgs, "delete-space": groupOrgs,
	"quotas": groupOrgs, "create-quota": groupOrgs, "update-quota": groupOrgs, "set-quota": groupOrgs,
	"space-quotas": groupOrgs, "create-space-quota": groupOrgs, "set-space-quota": groupOrgs, "unset-space-quota": groupOrgs,

	"create-user": groupUsers, "delete-user": groupUsers, "passwd": groupUsers,
	"set-org-role": groupUsers, "unset-org-role": groupUsers, "set-space-role": groupUsers, "unset-space-role": groupUsers,
	"org-users": groupUsers, "space-users": groupUsers,

	"domains": groupRoutes, "create-domain": groupRoutes, "create-shared-domain": groupRoutes,
	"create-private-domain": groupRoutes, "delete-domain": groupRoutes,
	"share-private-domain": groupRoutes, "unshare-private-domain": groupRoutes,
	"routes": groupRoutes, "create-route": groupRoutes, "delete-route": groupRoutes,
	"map-route": groupRoutes, "unmap-route": groupRoutes,

	"buildpacks": GroupPlatform, "create-buildpack": GroupPlatform, "update-buildpack": GroupPlatform,
	"delete-buildpack": GroupPlatform, "stacks": GroupPlatform, "cells": GroupPlatform,
}
