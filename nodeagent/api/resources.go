package api

// Resources is GET /1.0/resources (`lxc info --resources`), LXD's resources_v2 shape: the
// member's CPUs and memory. GPUs, NICs, disks, USB and PCI devices are not inventoried
// (empty lists).
type Resources struct {
	CPU     ResourcesCPU     `json:"cpu" yaml:"cpu"`
	Memory  ResourcesMemory  `json:"memory" yaml:"memory"`
	GPU     ResourcesList    `json:"gpu" yaml:"gpu"`
	Network ResourcesList    `json:"network" yaml:"network"`
	Storage ResourcesStorage `json:"storage" yaml:"storage"`
	USB     ResourcesDevices `json:"usb" yaml:"usb"`
	PCI     ResourcesDevices `json:"pci" yaml:"pci"`
}

// ResourcesCPU are the member's CPU sockets.
type ResourcesCPU struct {
	Architecture string               `json:"architecture" yaml:"architecture"`
	Sockets      []ResourcesCPUSocket `json:"sockets" yaml:"sockets"`
	Total        uint64               `json:"total" yaml:"total"`
}

// ResourcesCPUSocket is one CPU socket.
type ResourcesCPUSocket struct {
	Name   string             `json:"name,omitempty" yaml:"name,omitempty"`
	Vendor string             `json:"vendor,omitempty" yaml:"vendor,omitempty"`
	Socket uint64             `json:"socket" yaml:"socket"`
	Cores  []ResourcesCPUCore `json:"cores" yaml:"cores"`
	// Frequency is in MHz.
	Frequency uint64 `json:"frequency,omitempty" yaml:"frequency,omitempty"`
}

// ResourcesCPUCore is one core of a socket.
type ResourcesCPUCore struct {
	Core      uint64               `json:"core" yaml:"core"`
	Die       uint64               `json:"die" yaml:"die"`
	Threads   []ResourcesCPUThread `json:"threads" yaml:"threads"`
	Frequency uint64               `json:"frequency,omitempty" yaml:"frequency,omitempty"`
}

// ResourcesCPUThread is one hardware thread (a logical CPU).
type ResourcesCPUThread struct {
	ID       int64  `json:"id" yaml:"id"`
	NUMANode uint64 `json:"numa_node" yaml:"numa_node"`
	Thread   uint64 `json:"thread" yaml:"thread"`
	Online   bool   `json:"online" yaml:"online"`
	Isolated bool   `json:"isolated" yaml:"isolated"`
}

// ResourcesMemory is the member's memory, in bytes.
type ResourcesMemory struct {
	HugepagesTotal uint64 `json:"hugepages_total" yaml:"hugepages_total"`
	HugepagesUsed  uint64 `json:"hugepages_used" yaml:"hugepages_used"`
	HugepagesSize  uint64 `json:"hugepages_size" yaml:"hugepages_size"`
	Used           uint64 `json:"used" yaml:"used"`
	Total          uint64 `json:"total" yaml:"total"`
}

// ResourcesList is an inventory orch does not take (GPUs, NICs): always empty.
type ResourcesList struct {
	Cards []any  `json:"cards" yaml:"cards"`
	Total uint64 `json:"total" yaml:"total"`
}

// ResourcesStorage is the disk inventory orch does not take: always empty.
type ResourcesStorage struct {
	Disks []any  `json:"disks" yaml:"disks"`
	Total uint64 `json:"total" yaml:"total"`
}

// ResourcesDevices is a device inventory orch does not take (USB, PCI): always empty.
type ResourcesDevices struct {
	Devices []any  `json:"devices" yaml:"devices"`
	Total   uint64 `json:"total" yaml:"total"`
}

// ResourcesStoragePool is GET /1.0/storage-pools/NAME/resources (`lxc storage info`): the
// space and inodes of the pool's filesystem on one member.
type ResourcesStoragePool struct {
	Space  ResourcesUsage `json:"space" yaml:"space"`
	Inodes ResourcesUsage `json:"inodes" yaml:"inodes"`
}

// ResourcesUsage is a used/total pair.
type ResourcesUsage struct {
	Used  uint64 `json:"used" yaml:"used"`
	Total uint64 `json:"total" yaml:"total"`
}
