#!/usr/bin/env python3
"""redis-py against a running shoal (or Redis) server.

Run as:  python3 tests/python/test_redis_py.py --port P --protocol 2|3

Every check is a small function named after the area it covers; main() runs
them in order and a failing assertion or unexpected exception propagates, so
the process exits non-zero and the traceback names the check that broke.
Prints "ok" on success.

`--redis7` skips the Redis 8.4 commands (SET IFEQ/IFNE, DELEX) so the script
itself can be validated against a Redis 7 server.
"""

import argparse
import sys
import time

import warnings

import redis

# redis-py marks SETEX/PSETEX/SETNX deprecated and SET's ifeq/ifne
# experimental; they are exercised on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*experimental usage.*")


def expect_error(fn, *fragments):
    """Calls fn, which must raise redis.ResponseError mentioning every fragment."""
    try:
        result = fn()
    except redis.ResponseError as e:
        text = str(e)
        for fragment in fragments:
            assert fragment in text, f"error {text!r} lacks {fragment!r}"
        return text
    raise AssertionError(f"expected ResponseError {fragments!r}, got {result!r}")


# --- checks -----------------------------------------------------------------


def check_ping(r, rb):
    assert r.ping() is True
    assert rb.ping() is True
    assert r.echo("hello") == "hello"


def check_set_get(r, rb):
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == "hello"
    assert r.set("greeting", "world") is True
    assert r.get("greeting") == "world"
    assert r.set("empty", "") is True
    assert r.get("empty") == ""
    assert r.strlen("empty") == 0


def check_binary_values(r, rb):
    all_bytes = bytes(range(256))
    assert rb.set(b"bin:all", all_bytes) is True
    assert rb.get(b"bin:all") == all_bytes
    assert rb.strlen(b"bin:all") == 256

    crlf = b"before\r\nafter\r\n$3\r\n*1\r\n"
    assert rb.set(b"bin:crlf", crlf) is True
    assert rb.get(b"bin:crlf") == crlf

    key = b"key\r\nwith\r\ncrlf\x00\xff"
    assert rb.set(key, b"v") is True
    assert rb.get(key) == b"v"
    assert rb.exists(key) == 1
    assert key in rb.keys(b"key*")
    assert rb.delete(key) == 1
    assert rb.get(key) is None


def check_large_value(r, rb):
    big = bytes((i * 7 + 3) % 256 for i in range(1024 * 1024))
    assert rb.set(b"big", big) is True
    assert rb.get(b"big") == big
    assert rb.strlen(b"big") == len(big)
    assert rb.delete(b"big") == 1


def check_missing_key(r, rb):
    assert r.get("no:such:key") is None
    assert rb.get(b"no:such:key") is None
    assert r.strlen("no:such:key") == 0


def check_mget_mset(r, rb):
    assert r.mset({"m:a": "1", "m:b": "2", "m:c": "3"}) is True
    assert r.mget("m:a", "m:missing", "m:b", "m:c", "m:also-missing") == [
        "1",
        None,
        "2",
        "3",
        None,
    ]
    assert r.mget(["m:x", "m:y"]) == [None, None]
    assert r.mset({"m:a": "one"}) is True
    assert r.get("m:a") == "one"


def check_counters(r, rb):
    # redis-py sends INCRBY k 1 / DECRBY k 1 for incr/decr; use
    # execute_command for the plain INCR/DECR forms.
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.incrby("n", 10) == 12
    assert r.decr("n") == 11
    assert r.decrby("n", 20) == -9
    assert r.execute_command("INCR", "n") == -8
    assert r.execute_command("DECR", "n") == -9
    assert r.get("n") == "-9"
    assert r.incrby("n", -1) == -10
    assert r.set("n2", "41") is True
    assert r.execute_command("INCR", "n2") == 42


def check_counter_errors(r, rb):
    r.set("notanumber", "abc")
    expect_error(lambda: r.incr("notanumber"), "value is not an integer or out of range")
    expect_error(
        lambda: r.execute_command("INCR", "notanumber"),
        "value is not an integer or out of range",
    )
    expect_error(
        lambda: r.incrby("n3", "x"), "value is not an integer or out of range"
    )
    assert r.get("notanumber") == "abc"
    r.set("max", str(2**63 - 1))
    expect_error(lambda: r.incr("max"), "increment or decrement would overflow")
    assert r.get("max") == str(2**63 - 1)


def check_arity_and_unknown(r, rb):
    expect_error(
        lambda: r.execute_command("GET"), "wrong number of arguments for 'get' command"
    )
    expect_error(
        lambda: r.execute_command("SET", "k"),
        "wrong number of arguments for 'set' command",
    )
    expect_error(lambda: r.execute_command("NOSUCHCOMMAND", "a", "b"), "unknown command")
    # The connection is still usable after errors.
    assert r.ping() is True


def check_set_options(r, rb):
    r.delete("s")
    assert r.set("s", "v", nx=True) is True
    assert r.set("s", "v2", nx=True) is None
    assert r.get("s") == "v"
    assert r.set("s", "v3", xx=True) is True
    assert r.get("s") == "v3"
    assert r.set("s:absent", "v", xx=True) is None
    assert r.exists("s:absent") == 0

    assert r.set("s", "v4", get=True) == "v3"
    assert r.set("s:new", "x", get=True) is None
    assert r.get("s:new") == "x"

    assert r.set("s", "v5", ex=100) is True
    assert 90 <= r.ttl("s") <= 100
    assert r.set("s", "v6", px=50000) is True
    assert 40000 <= r.pttl("s") <= 50000
    assert r.set("s", "v7", keepttl=True) is True
    assert 40000 <= r.pttl("s") <= 50000
    assert r.get("s") == "v7"
    assert r.set("s", "v8") is True
    assert r.ttl("s") == -1

    expect_error(lambda: r.execute_command("SET", "s", "v", "NX", "XX"), "syntax error")
    expect_error(lambda: r.execute_command("SET", "s", "v", "EX", "0"), "invalid expire time")
    expect_error(
        lambda: r.execute_command("SET", "s", "v", "EX", "abc"),
        "value is not an integer or out of range",
    )


def check_set_ifeq_ifne(r, rb):
    r.set("c", "old")
    assert r.execute_command("SET", "c", "new", "IFEQ", "wrong") is None
    assert r.get("c") == "old"
    assert r.execute_command("SET", "c", "new", "IFEQ", "old") in (True, "OK")
    assert r.get("c") == "new"
    assert r.execute_command("SET", "c", "newer", "IFNE", "new") is None
    assert r.get("c") == "new"
    assert r.execute_command("SET", "c", "newer", "IFNE", "other") in (True, "OK")
    assert r.get("c") == "newer"
    # IFEQ never creates a key; IFNE does.
    r.delete("c:absent")
    assert r.execute_command("SET", "c:absent", "v", "IFEQ", "v") is None
    assert r.exists("c:absent") == 0
    assert r.execute_command("SET", "c:absent", "v", "IFNE", "v") in (True, "OK")
    assert r.get("c:absent") == "v"
    # With GET the old value comes back whether or not the condition held.
    # (get=True tells redis-py's SET reply callback to return the value.)
    assert r.execute_command("SET", "c", "x", "IFEQ", "nope", "GET", get=True) == "newer"
    assert r.get("c") == "newer"
    assert r.execute_command("SET", "c", "x", "IFEQ", "newer", "GET", get=True) == "newer"
    assert r.get("c") == "x"
    # redis-py 8's own keyword arguments send the same options.
    assert r.set("c", "y", ifeq="x") is True
    assert r.set("c", "z", ifne="y") is None
    assert r.get("c") == "y"


def check_delex(r, rb):
    r.set("d", "v")
    assert r.execute_command("DELEX", "d", "IFEQ", "other") == 0
    assert r.exists("d") == 1
    assert r.execute_command("DELEX", "d", "IFNE", "v") == 0
    assert r.execute_command("DELEX", "d", "IFEQ", "v") == 1
    assert r.exists("d") == 0
    r.set("d", "v")
    assert r.execute_command("DELEX", "d", "IFNE", "other") == 1
    assert r.exists("d") == 0
    r.set("d", "v")
    assert r.execute_command("DELEX", "d") == 1
    assert r.execute_command("DELEX", "d") == 0
    assert r.execute_command("DELEX", "d", "IFEQ", "v") == 0


def check_getdel_getex(r, rb):
    r.set("g", "v")
    assert r.getdel("g") == "v"
    assert r.exists("g") == 0
    assert r.getdel("g") is None

    r.set("g", "v")
    assert r.getex("g") == "v"
    assert r.ttl("g") == -1
    assert r.getex("g", ex=100) == "v"
    assert 90 <= r.ttl("g") <= 100
    assert r.getex("g", px=50000) == "v"
    assert 40000 <= r.pttl("g") <= 50000
    assert r.getex("g", persist=True) == "v"
    assert r.ttl("g") == -1
    assert r.getex("g:missing", ex=10) is None


def check_setnx_setex_psetex_getset(r, rb):
    r.delete("x")
    assert r.setnx("x", "1") is True
    assert r.setnx("x", "2") is False
    assert r.get("x") == "1"

    assert r.setex("x", 100, "ex") is True
    assert r.get("x") == "ex"
    assert 90 <= r.ttl("x") <= 100
    assert r.psetex("x", 50000, "px") is True
    assert r.get("x") == "px"
    assert 40000 <= r.pttl("x") <= 50000
    expect_error(lambda: r.setex("x", 0, "v"), "invalid expire time")

    assert r.getset("x", "new") == "px"
    assert r.ttl("x") == -1  # GETSET clears the TTL
    assert r.getset("x:missing", "v") is None
    assert r.get("x:missing") == "v"


def check_append_strlen(r, rb):
    r.delete("a")
    assert r.append("a", "hello") == 5
    assert r.append("a", " world") == 11
    assert r.get("a") == "hello world"
    assert r.strlen("a") == 11
    assert rb.append(b"a", b"\x00\r\n") == 14
    assert rb.get(b"a") == b"hello world\x00\r\n"


def check_expiry(r, rb):
    r.set("e", "v")
    assert r.ttl("e") == -1
    assert r.pttl("e") == -1
    assert r.ttl("e:missing") == -2
    assert r.pttl("e:missing") == -2
    assert r.expire("e", 100) is True
    assert 90 <= r.ttl("e") <= 100
    assert r.pexpire("e", 50000) is True
    assert 40000 <= r.pttl("e") <= 50000
    assert r.persist("e") is True
    assert r.persist("e") is False
    assert r.ttl("e") == -1
    assert r.expire("e:missing", 10) is False
    assert r.pexpire("e:missing", 10) is False

    # A key that expires disappears.
    r.set("e:short", "v", px=1)
    deadline = time.time() + 5
    while r.exists("e:short") and time.time() < deadline:
        time.sleep(0.01)
    assert r.get("e:short") is None
    assert r.exists("e:short") == 0


def check_type_exists_delete(r, rb):
    r.set("t", "v")
    assert r.type("t") == "string"
    assert r.type("t:missing") == "none"
    r.set("t2", "v")
    assert r.exists("t") == 1
    assert r.exists("t", "t2", "t:missing", "t") == 3
    assert r.delete("t", "t2", "t:missing") == 2
    assert r.exists("t", "t2") == 0
    assert r.delete("t") == 0
    r.set("u", "v")
    assert r.unlink("u", "u:missing") == 1


def check_keys_scan(r, rb):
    r.flushdb()
    written = {f"scan:{i}" for i in range(500)}
    others = {f"other:{i}" for i in range(50)}
    r.mset({k: "v" for k in written | others})
    assert set(r.keys("scan:*")) == written
    assert set(r.keys("*")) == written | others
    assert set(r.keys("scan:1?")) == {f"scan:{i}" for i in range(10, 20)}
    assert r.keys("nothing:*") == []
    assert set(r.scan_iter(match="scan:*", count=37)) == written
    assert set(r.scan_iter()) == written | others
    scanned = list(r.scan_iter(match="other:*"))
    assert len(scanned) == len(set(scanned)) == 50
    cursor, page = r.scan(0, match="*", count=10)
    assert isinstance(cursor, int) and isinstance(page, list)


def check_dbsize_flushdb(r, rb):
    r.flushdb()
    assert r.dbsize() == 0
    r.mset({f"f:{i}": i for i in range(25)})
    assert r.dbsize() == 25
    assert r.flushdb() is True
    assert r.dbsize() == 0
    assert r.keys("*") == []


def check_pipeline(r, rb):
    r.flushdb()
    pipe = r.pipeline(transaction=False)
    expected = []
    for i in range(250):
        pipe.set(f"p:{i}", f"v{i}")
        expected.append(True)
        pipe.get(f"p:{i}")
        expected.append(f"v{i}")
        pipe.incr("p:counter")
        expected.append(i + 1)
        pipe.get(f"p:missing:{i}")
        expected.append(None)
    results = pipe.execute()
    assert len(results) == 1000
    for i, (got, want) in enumerate(zip(results, expected)):
        assert got == want, f"pipeline result {i}: {got!r} != {want!r}"
    assert r.dbsize() == 251

    # An error inside a pipeline is reported in place and does not break
    # the commands around it.
    pipe = r.pipeline(transaction=False)
    pipe.set("p:s", "abc").incr("p:s").get("p:s")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], redis.ResponseError)
    assert results[2] == "abc"


def check_client_commands(r, rb):
    # A dedicated connection so the name sticks to it.
    c = redis.Redis(
        port=r.connection_pool.connection_kwargs["port"],
        protocol=r.connection_pool.connection_kwargs.get("protocol", 2),
        decode_responses=True,
        single_connection_client=True,
    )
    try:
        assert c.client_getname() is None
        assert c.client_setname("shoal-test") is True
        assert c.client_getname() == "shoal-test"
        expect_error(lambda: c.client_setname("has space"), "cannot contain spaces")
        ident = c.client_id()
        assert isinstance(ident, int) and ident > 0
        assert c.client_id() == ident
        assert r.client_id() != ident
    finally:
        c.close()


def check_info_config(r, rb):
    info = r.info()
    assert isinstance(info, dict), info
    assert "redis_version" in info, sorted(info)
    server = r.info("server")
    assert "redis_version" in server
    maxclients = r.config_get("maxclients")
    assert list(maxclients) == ["maxclients"], maxclients
    assert int(maxclients["maxclients"]) > 0
    assert r.config_get("no-such-parameter") == {}


def check_hello(r, rb, protocol):
    c = redis.Redis(
        port=r.connection_pool.connection_kwargs["port"],
        protocol=protocol,
        decode_responses=True,
        single_connection_client=True,
    )
    try:
        reply = c.execute_command("HELLO", protocol)
        if isinstance(reply, list):  # RESP2 map arrives as a flat list
            reply = dict(zip(reply[::2], reply[1::2]))
        assert reply["server"] == "redis", reply
        assert reply["proto"] == protocol, reply
        assert "version" in reply, reply
        assert reply["id"] == c.client_id(), reply
        assert reply["mode"] == "standalone", reply
        assert reply["role"] == "master", reply
        expect_error(lambda: c.execute_command("HELLO", 4), "NOPROTO")
        assert c.ping() is True
    finally:
        c.close()


def check_command_introspection(r, rb):
    commands = r.command()
    assert isinstance(commands, dict), type(commands)
    for name in ("get", "set", "mset", "del", "ping"):
        assert name in commands, sorted(commands)
    assert commands["get"]["arity"] == 2, commands["get"]
    assert commands["set"]["arity"] == -3, commands["set"]
    assert commands["mset"]["step_count"] == 2, commands["mset"]
    assert commands["get"]["first_key_pos"] == 1, commands["get"]
    assert commands["mset"]["last_key_pos"] == -1, commands["mset"]
    assert "write" in commands["set"]["flags"], commands["set"]
    count = r.command_count()
    assert count == len(commands), (count, len(commands))


def check_select(r, rb, bad_db=1):
    # shoal serves only database 0 (Redis 7 has 16, so --redis7 uses 16).
    assert r.select(0) is True
    expect_error(lambda: r.select(bad_db), "DB index is out of range")
    assert r.ping() is True


# --- driver -----------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--protocol", type=int, choices=(2, 3), default=2)
    ap.add_argument(
        "--redis7", action="store_true", help="skip Redis 8.4 commands (IFEQ/IFNE, DELEX)"
    )
    args = ap.parse_args()

    common = dict(host=args.host, port=args.port, protocol=args.protocol)
    r = redis.Redis(decode_responses=True, **common)
    rb = redis.Redis(decode_responses=False, **common)
    r.flushdb()

    checks = [
        check_ping,
        check_set_get,
        check_binary_values,
        check_large_value,
        check_missing_key,
        check_mget_mset,
        check_counters,
        check_counter_errors,
        check_arity_and_unknown,
        check_set_options,
        check_set_ifeq_ifne,
        check_delex,
        check_getdel_getex,
        check_setnx_setex_psetex_getset,
        check_append_strlen,
        check_expiry,
        check_type_exists_delete,
        check_keys_scan,
        check_dbsize_flushdb,
        check_pipeline,
        check_client_commands,
        check_info_config,
        check_hello,
        check_command_introspection,
        check_select,
    ]
    extra = {check_hello: dict(protocol=args.protocol)}
    if args.redis7:
        checks = [c for c in checks if c not in (check_set_ifeq_ifne, check_delex)]
        extra[check_select] = dict(bad_db=16)
    for check in checks:
        name = check.__name__
        try:
            check(r, rb, **extra.get(check, {}))
        except Exception:
            print(f"FAILED: {name} (protocol {args.protocol})", file=sys.stderr)
            raise
    r.close()
    rb.close()
    print("ok")


if __name__ == "__main__":
    main()
