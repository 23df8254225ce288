"""Judging a Redis user's own rules (ACL GETUSER) when ACL DRYRUN may not be asked."""

from tenancy_operator.backends.redis_privileges import judge_rules

OPERATOR = ("-@all +restore +del +unlink +client|list +client|kill +type +object|freq +object|idletime +ping +dump "
            "+scan +pttl +set +auth +acl|deluser +acl|list +acl|setuser +acl|whoami +acl|getuser +memory|usage "
            "+hello +get +dbsize +info")
KEYS = "~t:* ~tenancy:owner:*"


def _names(missing: list[str]) -> list[str]:
    return [m.split(" (", 1)[0] for m in missing]


def test_the_operator_rules_lack_nothing():
    assert judge_rules({"commands": OPERATOR, "keys": KEYS}, {}) == []


def test_a_removed_subcommand_is_named():
    assert _names(judge_rules({"commands": OPERATOR + " -client|kill", "keys": KEYS}, {})) == ["CLIENT KILL"]


def test_later_rules_win_and_a_whole_command_covers_its_subcommands():
    assert judge_rules({"commands": "+@all -acl +acl", "keys": "~*"}, {}) == []
    assert _names(judge_rules({"commands": "+@all -acl", "keys": "~*"}, {})) == ["ACL SETUSER", "ACL GETUSER",
                                                                                 "ACL DELUSER"]
    assert judge_rules({"commands": "allcommands", "keys": "allkeys"}, {}) == []


def test_categories_use_their_members():
    admin = {"client|kill", "client|list", "acl|setuser"}
    missing = _names(judge_rules({"commands": "+@all -@admin", "keys": "~*"}, {"admin": admin}))
    assert missing == ["ACL SETUSER", "CLIENT LIST", "CLIENT KILL"]


def test_keys_outside_the_patterns_and_read_only_patterns_are_named():
    missing = judge_rules({"commands": "+@all", "keys": "~t:*"}, {})
    assert _names(missing) == ["GET", "SET", "DEL"] and "tenancy:owner:probe" in missing[0]
    assert _names(judge_rules({"commands": "+@all", "keys": "%R~*"}, {})) == ["RESTORE", "UNLINK", "SET", "DEL"]


def test_a_selector_may_allow_what_the_root_rules_do_not():
    state = {"commands": OPERATOR + " -client|kill", "keys": KEYS,
             "selectors": [{"commands": "-@all +client|kill", "keys": "", "channels": ""}]}
    assert judge_rules(state, {}) == []
