//go:build !race

package cell

// raceDetector: see race_on_test.go.
const raceDetector = false
