package lxdclient

import (
	"os"
	"testing"

	"orch/integration/agenttest"
)

// TestMain builds the nodeagent binary once for all the package's tests (agenttest.Main).
func TestMain(m *testing.M) { os.Exit(agenttest.Main(m)) }
