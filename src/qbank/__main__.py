from qbank.server.cli import main

main()
