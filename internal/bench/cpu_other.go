//go:build !linux

package bench

import (
	"errors"
	"time"
)

// selfCPU is not measured off Linux; the table shows zero.
func selfCPU() time.Duration { return 0 }

func processCPU(pid int) (time.Duration, error) {
	return 0, errors.New("CPU time of another process is read from /proc, on Linux only")
}

// selfRSS is not measured off Linux; the table shows zero.
func selfRSS() uint64 { return 0 }
