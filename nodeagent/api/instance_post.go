package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// lxdInstancesPost is POST /1.0/instances as LXD's clients send it (`lxc launch`, pylxd):
// the image in a source object, and fields orch has no use for but must accept.
type lxdInstancesPost struct {
	Name         string                       `json:"name"`
	Source       json.RawMessage              `json:"source"`
	Profiles     []string                     `json:"profiles"`
	NoStart      bool                         `json:"no_start"`
	Config       map[string]string            `json:"config"`
	Devices      map[string]map[string]string `json:"devices"`
	Type         string                       `json:"type"`
	Architecture string                       `json:"architecture"`
	Ephemeral    bool                         `json:"ephemeral"`
	Stateful     bool                         `json:"stateful"`
	Description  string                       `json:"description"`
	InstanceType string                       `json:"instance_type"`
	Start        bool                         `json:"start"`
}

// lxdInstanceSource is LXD's source object of a create from an image.
type lxdInstanceSource struct {
	Type              string            `json:"type"`
	Alias             string            `json:"alias"`
	Fingerprint       string            `json:"fingerprint"`
	Properties        map[string]string `json:"properties"`
	Server            string            `json:"server"`
	Protocol          string            `json:"protocol"`
	Mode              string            `json:"mode"`
	Certificate       string            `json:"certificate"`
	Secret            string            `json:"secret"`
	Project           string            `json:"project"`
	AllowInconsistent bool              `json:"allow_inconsistent"`
	// Source, with type "copy", is the instance to copy (`lxc copy`), and the fields after
	// it what LXD's copy sends besides.
	Source        string `json:"source"`
	BaseImage     string `json:"base-image"`
	Live          bool   `json:"live"`
	InstanceOnly  bool   `json:"instance_only"`
	ContainerOnly bool   `json:"container_only"`
	Refresh       bool   `json:"refresh"`
}

// UnmarshalJSON reads orch's form (source: the image as a string; the instance starts
// unless no_start) and LXD's (source: {"type": "image", "alias" or "fingerprint"}; as in
// LXD the instance is created stopped unless "start" is set). Unknown fields are refused,
// as are what an orch cluster cannot do (another source type, an image server, instance
// devices, ephemeral or stateful instances, a type other than container).
func (p *InstancesPost) UnmarshalJSON(b []byte) error {
	var aux lxdInstancesPost
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*p = InstancesPost{Name: aux.Name, Profiles: aux.Profiles, NoStart: aux.NoStart, Config: aux.Config, Devices: aux.Devices}
	if len(aux.Source) == 0 || aux.Source[0] == '"' {
		return json.Unmarshal(orNull(aux.Source), &p.Source)
	}
	if err := checkLXDCreate(aux); err != nil {
		return err
	}
	var src lxdInstanceSource
	dec = json.NewDecoder(bytes.NewReader(aux.Source))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&src); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if src.Type == "copy" {
		return p.copyOf(aux, src)
	}
	if src.Type != "image" {
		return fmt.Errorf("source type %q: only \"image\" and \"copy\" are supported", src.Type)
	}
	if src.Server != "" {
		return fmt.Errorf("source server %q: image servers are orch remotes here (`image remote add`), launch REMOTE:ALIAS", src.Server)
	}
	p.Source = src.Alias
	if p.Source == "" {
		p.Source = src.Fingerprint
	}
	if p.Source == "" {
		return errors.New("source: no alias or fingerprint")
	}
	p.NoStart = !aux.Start
	return nil
}

// copyOf reads a copy of an instance within the cluster (`lxc copy c1 c2`): created
// stopped, as LXD's; a refresh, a copy from another server and a live copy are refused.
func (p *InstancesPost) copyOf(aux lxdInstancesPost, src lxdInstanceSource) error {
	switch {
	case src.Source == "":
		return errors.New("source: no instance to copy")
	case src.Server != "" || src.Certificate != "" || src.Secret != "":
		return errors.New("source: copying from another server is not supported (copy within the cluster)")
	case src.Refresh:
		return errors.New("source refresh: refreshing a copy is not supported")
	case src.Live:
		return errors.New("source live: live copies are not supported (stop the instance first)")
	}
	p.CopyFrom, p.AllowInconsistent = src.Source, src.AllowInconsistent
	p.NoStart = !aux.Start
	return nil
}

// checkLXDCreate refuses what an LXD create asks that an orch cluster cannot do.
func checkLXDCreate(aux lxdInstancesPost) error {
	switch {
	case aux.Type != "" && aux.Type != "container":
		return fmt.Errorf("type %q: only containers are supported", aux.Type)
	case aux.Ephemeral:
		return errors.New("ephemeral instances are not supported")
	case aux.Stateful:
		return errors.New("stateful instances are not supported")
	}
	return nil
}

// orNull is b, or JSON null when empty.
func orNull(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}
