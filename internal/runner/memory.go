package runner

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// DefaultMemoryBudgetMB returns half of the machine's memory in MiB (from
// /proc/meminfo), or 2048 where that cannot be read.
func DefaultMemoryBudgetMB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 2048
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.Atoi(fields[1])
			if err == nil && kb > 0 {
				return kb / 1024 / 2
			}
		}
	}
	return 2048
}
