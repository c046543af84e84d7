//go:build !linux

package bench

// processPeakRSS is not measured off Linux; the table shows zero.
func processPeakRSS(pid int) uint64 { return 0 }
