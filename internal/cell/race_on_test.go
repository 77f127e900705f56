//go:build race

package cell

// raceDetector: the race detector multiplies the CPU cost of every
// memory access, so bounds on CPU time mean nothing in this build.
const raceDetector = true
