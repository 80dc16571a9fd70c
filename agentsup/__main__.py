from agentsup.cli import main

main()
