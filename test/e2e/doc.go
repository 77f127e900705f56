// Package e2e holds Pando's end-to-end tests: they run the real `pando`
// binary as a server (real runc containers, real router) in a temp data dir
// on free loopback ports and drive it with the `pando` client verbs, the way
// a user does. They need root and runc; `make test` runs them with CI=true.
package e2e
