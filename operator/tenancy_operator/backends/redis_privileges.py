"""Which commands the operator's Redis admin user lacks, asked of the server two ways.

First `ACL DRYRUN <me> <command...>` for each command in NEEDED (Redis 7+): the server judges. Where
DRYRUN is refused (a user without `acl|dryrun`, or Redis 6, which has none), the user's own rules
are read with `ACL GETUSER <me>` (the adapter needs that command anyway) and judged here, in order,
as Redis applies them: `+@all`/`-@all`, `+cmd`/`-cmd` (all its subcommands), `+cmd|sub`/`-cmd|sub`,
`+@category`/`-@category` (members from `ACL CAT <category>`), key patterns `~p`, `%R~p`, `%W~p`,
`%RW~p`, and selectors (a command is allowed when the root rules or any one selector allow it).
When neither way can answer (GETUSER refused, or the rules name a category and `ACL CAT` is
refused), the refusal itself is reported as the missing privilege: nothing the probe cannot see may
look fine (a Backend that hid a missing `CLIENT KILL` failed only later, at suspend and delete).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

__all__ = ["NEEDED", "missing_commands", "judge_rules"]

# What the adapter and its archive, cache-budget and delete paths run, on a tenant `probe`'s keys.
NEEDED = (("ACL", "SETUSER", "tenant:probe"), ("ACL", "GETUSER", "tenant:probe"), ("ACL", "DELUSER", "tenant:probe"),
          ("CLIENT", "LIST"), ("CLIENT", "KILL", "USER", "tenant:probe"), ("DBSIZE",), ("SCAN", "0"),
          ("TYPE", "t:probe:k"), ("PTTL", "t:probe:k"), ("DUMP", "t:probe:k"), ("RESTORE", "t:probe:k", "0", "x"),
          ("MEMORY", "USAGE", "t:probe:k"), ("OBJECT", "IDLETIME", "t:probe:k"), ("UNLINK", "t:probe:k"),
          ("GET", "tenancy:owner:probe"), ("SET", "tenancy:owner:probe", "x"), ("DEL", "tenancy:owner:probe"))
_CONTAINERS = ("ACL", "CLIENT", "MEMORY", "OBJECT")  # commands named by their first two words
_KEYLESS = ("ACL", "CLIENT", "DBSIZE", "SCAN")
_WRITES = ("RESTORE", "UNLINK", "SET", "DEL")


def _label(command: tuple[str, ...]) -> str:
    return " ".join(command[:2] if command[0] in _CONTAINERS else command[:1])


async def missing_commands(client: aioredis.Redis, username: str) -> list[str]:
    """The NEEDED commands the logged-in user may not run, each as "CMD [SUB] (why)"; [] when all may.

    `username` is who the client logged in as, used when `ACL WHOAMI` is refused. Raises the
    client's connection errors (the caller maps them).
    """
    try:
        me = str(await client.execute_command("ACL", "WHOAMI"))
    except ResponseError:
        me = username or "default"
    pipe = client.pipeline(transaction=False)
    for command in NEEDED:
        pipe.execute_command("ACL", "DRYRUN", me, *command)
    replies = await pipe.execute(raise_on_error=False)
    refused = next((r for r in replies if isinstance(r, ResponseError)), None)
    if refused is None:
        return [f"{_label(c)} ({r})" for c, r in zip(NEEDED, replies, strict=True) if r != "OK"]
    dryrun = f"ACL DRYRUN ({refused})"
    try:
        state = _as_dict(await client.execute_command("ACL", "GETUSER", me))
    except ResponseError as exc:
        return [dryrun, f"ACL GETUSER ({exc})"]
    categories: dict[str, set[str]] = {}
    for name in _categories_named(state):
        try:
            categories[name] = {str(c).lower() for c in await client.execute_command("ACL", "CAT", name)}
        except ResponseError as exc:
            return [f"{dryrun}; its rules name @{name} and ACL CAT is refused ({exc}), so they cannot be judged"]
    return judge_rules(state, categories)


def _as_dict(reply) -> dict:
    if isinstance(reply, dict):
        return reply
    return {reply[i]: reply[i + 1] for i in range(0, len(reply or []), 2)}


def _rule_sets(state: dict) -> list[dict]:
    """The root rules and each selector's, as {"commands": str, "keys": str}."""
    return [state, *[_as_dict(s) for s in state.get("selectors") or []]]


def _categories_named(state: dict) -> list[str]:
    found = {t[2:].lower() for s in _rule_sets(state) for t in str(s.get("commands") or "").split()
             if t[:2] in ("+@", "-@") and t[2:].lower() != "all"}
    return sorted(found)


def judge_rules(state: dict, categories: dict[str, set[str]]) -> list[str]:
    """The NEEDED commands an `ACL GETUSER` reply does not allow (pure; `categories`: members per name)."""
    missing = []
    for command in NEEDED:
        if any(_allows(s, command, categories) for s in _rule_sets(state)):
            continue
        key = _key_of(command)
        why = f"not allowed by its rules{f' on key {key}' if key else ''}, read with ACL GETUSER"
        missing.append(f"{_label(command)} ({why})")
    return missing


def _key_of(command: tuple[str, ...]) -> str | None:
    if command[0] in _KEYLESS:
        return None
    return command[2] if command[0] in _CONTAINERS else command[1]


def _allows(rules: dict, command: tuple[str, ...], categories: dict[str, set[str]]) -> bool:
    return _command_allowed(str(rules.get("commands") or ""), command, categories) and _key_allowed(
        str(rules.get("keys") or ""), command)


def _command_allowed(rules: str, command: tuple[str, ...], categories: dict[str, set[str]]) -> bool:
    base = command[0].lower()
    full = f"{base}|{command[1].lower()}" if command[0] in _CONTAINERS else base
    allowed = False
    for token in rules.split():
        sign, name = token[:1], token[1:].lower()
        if token in ("allcommands", "nocommands"):
            allowed = token == "allcommands"
        elif sign not in "+-" or not name:
            continue
        elif name == "@all" or name in (base, full) or (name.startswith("@") and full in categories.get(name[1:], ())):
            allowed = sign == "+"
    return allowed


def _key_allowed(patterns: str, command: tuple[str, ...]) -> bool:
    key = _key_of(command)
    if key is None:
        return True
    need = "W" if command[0] in _WRITES else "R"
    for token in patterns.split():
        if token == "allkeys":
            return True
        if token.startswith("~"):
            modes, pattern = "RW", token[1:]
        elif token.startswith("%") and "~" in token:
            modes, pattern = token[1:].split("~", 1)
        else:
            continue
        if need in modes.upper() and fnmatchcase(key, pattern):
            return True
    return False
