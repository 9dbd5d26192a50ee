/// Stage 5: an IPC namespace (CLONE_NEWIPC). System V shared memory, semaphores and message
/// queues (shmget, semget, msgget; listed in /proc/sysvipc/) and POSIX message queues belong
/// to it. Nothing to do inside: the clone flag alone gives an empty set. POSIX shared memory
/// is files in /dev/shm, which stage 4's private /dev already separates.
enum IPCStage {}
