package modules

import (
	"testing"

	"orch/nodeagent/api"
)

// TestProfileSteps: a missing profile is created, one that differs in description, config
// or a device key is replaced, an equal one (nil and empty maps alike) is left alone, and
// absent deletes only an existing profile.
func TestProfileSteps(t *testing.T) {
	want := api.Profile{Name: "web", Description: "d", Config: map[string]string{"limits.memory": "64MiB"},
		Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": "br0"}}}
	same := want
	otherDev := want
	otherDev.Devices = map[string]map[string]string{"eth0": {"type": "nic", "network": "br1"}}
	otherDesc := want
	otherDesc.Description = "e"
	cases := []struct {
		state string
		cur   *api.Profile
		want  string
	}{
		{"present", nil, "create profile web"},
		{"present", &same, ""},
		{"present", &otherDev, "update profile web"},
		{"present", &otherDesc, "update profile web"},
		{"absent", &same, "delete profile web"},
		{"absent", nil, ""},
	}
	for _, c := range cases {
		if got := whats(profileSteps(c.state, want, c.cur)); got != c.want {
			t.Errorf("%s, cur %+v: %q, want %q", c.state, c.cur, got, c.want)
		}
	}
	empty := api.Profile{Name: "e", Config: map[string]string{}, Devices: map[string]map[string]string{}}
	if got := whats(profileSteps("present", empty, &api.Profile{Name: "e"})); got != "" {
		t.Errorf("empty maps vs nil: %q", got)
	}
}

// TestImageSteps: present imports only when the alias is unknown; absent deletes the image
// the alias names.
func TestImageSteps(t *testing.T) {
	s := imageSpec{alias: "busybox", src: "/tmp/b.tar.xz", state: "present"}
	img := &api.Image{Fingerprint: "0123456789abcdef0123", Aliases: []api.ImageAlias{{Name: "busybox"}}}
	if got := whats(imageSteps(s, nil)); got != "import /tmp/b.tar.xz as busybox" {
		t.Errorf("missing: %q", got)
	}
	if got := whats(imageSteps(s, img)); got != "" {
		t.Errorf("present: %q", got)
	}
	s.state = "absent"
	if got := whats(imageSteps(s, img)); got != "delete image busybox (0123456789ab)" {
		t.Errorf("absent: %q", got)
	}
	if got := whats(imageSteps(s, nil)); got != "" {
		t.Errorf("absent and gone: %q", got)
	}
}
