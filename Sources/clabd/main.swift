import ClabDaemon

Daemon.main()
