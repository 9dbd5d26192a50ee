import ClabCLI

CLI.main()
