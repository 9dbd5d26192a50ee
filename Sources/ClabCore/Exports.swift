// DeviceRule is part of the cgroup driver's API (ContainerCgroup.deviceRules).
@_exported import ClabDevices
// ClabCore is the runtime a user of the library sees; the kernel-facing half (stages, spec,
// init) lives in ClabKernel so that the container's init links no Foundation.
@_exported import ClabKernel
