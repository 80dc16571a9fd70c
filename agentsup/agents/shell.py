"""The shell preset: any command, run as given."""

from __future__ import annotations

import re
from collections.abc import Mapping

from agentsup.agents.base import Launch
from agentsup.plan import AgentSpec

# Words no shell treats specially (no quoting, expansion, globbing, redirection, comment or separator).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
# Names sh runs itself rather than as a program (POSIX sh, dash and bash builtins and reserved words):
# /bin/echo is not sh's echo (backslashes), and `exit` or `cd` are no programs at all.
_BUILTINS_AND_KEYWORDS = """
    . : [ alias bg bind break builtin caller cd command compgen complete continue declare dirs disown echo
    enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile
    popd printf pushd pwd read readarray readonly return select set shift shopt source suspend test time
    times trap true type typeset ulimit umask unalias unset wait
    case do done elif else esac fi for function if in then until while
"""
_SHELL_OWN = frozenset(_BUILTINS_AND_KEYWORDS.split())


def plain_argv(cmd: str) -> tuple[str, ...] | None:
    """``cmd``'s argv when it is one program and its words, which ``sh -c`` would split on spaces and
    exec unchanged; None when the shell must read it (anything quoted, expanded, redirected, chained, an
    assignment, a builtin or a keyword first)."""
    words = tuple(word for word in cmd.split(" ") if word)
    if not words or not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    if words[0] in _SHELL_OWN or "=" in words[0]:
        return None
    return words


class ShellPreset:
    """``cmd`` runs as ``sh -c`` would run it: a plain command (one program and its words) is exec'd
    directly, which saves starting a shell, anything else runs under ``sh -c``; ``argv`` runs directly."""

    name = "shell"

    def launch(self, spec: AgentSpec, env: Mapping[str, str]) -> Launch:
        if spec.argv is not None:
            argv = spec.argv
        elif spec.cmd is not None:
            argv = plain_argv(spec.cmd) or ("sh", "-c", spec.cmd)
        else:  # the loader guarantees one of the two
            raise ValueError(f"agent {spec.name!r} has neither cmd nor argv")
        return Launch(argv=argv, env={**spec.env, **env})
