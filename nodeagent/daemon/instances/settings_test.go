package instances

import (
	"strconv"
	"strings"
	"testing"
)

// TestParseLimits: LXD's forms of the limits keys, and bad values refused naming the key.
func TestParseLimits(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       string // "" means refused
	}{
		{keyLimitsMemory, "256MiB", "mem=268435456"},
		{keyLimitsMemory, "256MB", "mem=256000000"},
		{keyLimitsMemory, "1GiB", "mem=1073741824"},
		{keyLimitsMemory, "1.5GB", "mem=1500000000"},
		{keyLimitsMemory, "134217728", "mem=134217728"},
		{keyLimitsMemory, "lots", ""},
		{keyLimitsMemory, "1KB", ""},
		{keyLimitsMemory, "0%", ""},
		{keyLimitsMemory, "150%", ""},
		{keyLimitsCPU, "1", "cpus=0"},
		{keyLimitsCPU, "0-1,3", "cpus=0-1,3"},
		{keyLimitsCPU, "0", ""},
		{keyLimitsCPU, "0-x", ""},
		{keyLimitsProcesses, "100", "procs=100"},
		{keyLimitsProcesses, "0", ""},
		{keyLimitsProcesses, "many", ""},
	} {
		l, err := parseLimits(map[string]string{c.key: c.value})
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Errorf("%s=%s: %v, want an error naming the key", c.key, c.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s=%s: %v", c.key, c.value, err)
			continue
		}
		got := map[string]string{
			keyLimitsMemory: "mem=" + itoa(l.Memory), keyLimitsCPU: "cpus=" + l.CPUs, keyLimitsProcesses: "procs=" + itoa(l.Processes),
		}[c.key]
		if got != c.want {
			t.Errorf("%s=%s: %s, want %s", c.key, c.value, got, c.want)
		}
	}
	if l, err := parseLimits(map[string]string{keyLimitsMemory: "50%"}); err != nil || l.Memory <= 0 {
		t.Errorf("limits.memory=50%%: %+v, %v", l, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
