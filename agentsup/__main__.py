import sys

if sys.argv[1:2] == ["hook"]:  # an agent CLI's hook: skip click and the rest of the CLI (agentsup/hook.py)
    from agentsup.hook import main as hook

    sys.exit(hook(sys.argv[2:]))

from agentsup.cli import main

main()
