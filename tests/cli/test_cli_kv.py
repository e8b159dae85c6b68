"""`meshctl kv ...` as a subprocess against `meshctl agent -dev`: output and exit codes as `consul kv`."""

from __future__ import annotations

import base64
import json

import pytest

from meshctl.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(shared_dev_server) -> Client:
    return Client(shared_dev_server.addr)


def test_put_then_get_prints_raw_value(cli):
    put = cli("kv", "put", "c1/greeting", "hello world")
    assert (put.code, put.out, put.err) == (0, "Success! Data written to: c1/greeting\n", "")
    got = cli("kv", "get", "c1/greeting")
    assert (got.code, got.out, got.err) == (0, "hello world\n", "")


def test_get_missing_key_is_one_error_line(cli):
    r = cli("kv", "get", "c1/nope")
    assert (r.code, r.out, r.err) == (1, "", "Error! No key exists at: c1/nope\n")


def test_put_reads_stdin_with_dash(cli, client):
    r = cli("kv", "put", "c2/stdin", "-", input=b"from\nstdin\x00")
    assert r.code == 0
    assert client.kv.get("c2/stdin").value.value == b"from\nstdin\x00"


def test_put_reads_file_with_at(cli, client, tmp_path):
    f = tmp_path / "value.bin"
    f.write_bytes(b"\x01\x02file")
    assert cli("kv", "put", "c2/file", f"@{f}").code == 0
    assert client.kv.get("c2/file").value.value == b"\x01\x02file"


def test_put_missing_file_is_an_error(cli, tmp_path):
    r = cli("kv", "put", "c2/x", f"@{tmp_path}/missing")
    assert r.code == 1 and r.err.startswith("Error! Failed to read file") and r.err.count("\n") == 1


def test_put_without_value_stores_empty(cli, client):
    assert cli("kv", "put", "c2/empty").code == 0
    assert client.kv.get("c2/empty").value.value is None


def test_value_starting_with_dash_is_data_not_a_flag(cli):
    assert cli("kv", "put", "c2/neg", "-5").code == 0
    assert cli("kv", "get", "c2/neg").out == "-5\n"


def test_put_flags_and_detailed_output(cli, client):
    assert cli("kv", "put", "-flags=42", "c3/k", "v").code == 0
    pair = client.kv.get("c3/k").value
    r = cli("kv", "get", "-detailed", "c3/k")
    assert r.code == 0
    assert r.out == (
        f"CreateIndex      {pair.create_index}\n"
        "Flags            42\n"
        "Key              c3/k\n"
        "LockIndex        0\n"
        f"ModifyIndex      {pair.modify_index}\n"
        "Session          -\n"
        "Value            v\n"
    )


def test_get_recurse_prints_key_colon_value(cli):
    cli("kv", "put", "c4/a", "1")
    cli("kv", "put", "c4/b/c", "2")
    r = cli("kv", "get", "-recurse", "c4/")
    assert (r.code, r.out) == (0, "c4/a:1\nc4/b/c:2\n")


def test_get_recurse_detailed_separates_entries_with_blank_line(cli):
    cli("kv", "put", "c5/a", "1")
    cli("kv", "put", "c5/b", "2")
    r = cli("kv", "get", "-recurse", "-detailed", "c5/")
    blocks = r.out.split("\n\n")
    assert len(blocks) == 2
    assert "Key              c5/a" in blocks[0] and "Key              c5/b" in blocks[1]


def test_get_keys_defaults_to_slash_separator(cli):
    for k in ("c6/x", "c6/sub/y", "c6/sub/z"):
        cli("kv", "put", k, "1")
    assert cli("kv", "get", "-keys", "c6/").out == "c6/sub/\nc6/x\n"
    assert cli("kv", "get", "-keys", "-separator=", "c6/").out == "c6/sub/y\nc6/sub/z\nc6/x\n"


def test_get_base64(cli):
    cli("kv", "put", "c7/b", "bytes")
    assert cli("kv", "get", "-base64", "c7/b").out == base64.b64encode(b"bytes").decode() + "\n"


def test_put_base64_decodes_data(cli, client):
    assert cli("kv", "put", "-base64", "c7/d", base64.b64encode(b"\xffraw").decode()).code == 0
    assert client.kv.get("c7/d").value.value == b"\xffraw"


def test_long_style_flags_work_too(cli):
    cli("kv", "put", "--flags", "7", "c8/a", "1")
    r = cli("kv", "get", "--recurse", "c8/")
    assert r.out == "c8/a:1\n"
    assert "Flags            7" in cli("kv", "get", "--detailed=true", "c8/a").out


def test_leading_slash_is_stripped(cli):
    cli("kv", "put", "/c9/k", "v")
    assert cli("kv", "get", "/c9/k").out == "v\n"


def test_cas_success_and_failure_messages(cli, client):
    cli("kv", "put", "c10/k", "1")
    index = client.kv.get("c10/k").value.modify_index
    bad = cli("kv", "put", "-cas", f"-modify-index={index + 100}", "c10/k", "2")
    assert (bad.code, bad.err) == (1, "Error! Did not write to c10/k: CAS failed\n")
    good = cli("kv", "put", "-cas", "-modify-index", str(index), "c10/k", "2")
    assert (good.code, good.out) == (0, "Success! Data written to: c10/k\n")


def test_cas_needs_modify_index(cli):
    r = cli("kv", "put", "-cas", "c10/k", "x")
    assert (r.code, r.err) == (1, "Must specify -modify-index with -cas!\n")


def test_acquire_needs_session(cli):
    r = cli("kv", "put", "-acquire", "c11/k", "x")
    assert (r.code, r.err) == (1, "Error! Missing -session (required with -acquire and -release)\n")


def test_acquire_and_release_lock(cli, client):
    sid = client.session.create(lock_delay=0)
    try:
        r = cli("kv", "put", "-acquire", f"-session={sid}", "c11/lock", "held")
        assert (r.code, r.out) == (0, "Success! Lock acquired on: c11/lock\n")
        assert f"Session          {sid}" in cli("kv", "get", "-detailed", "c11/lock").out
        r = cli("kv", "put", "-release", "-session", sid, "c11/lock")
        assert (r.code, r.out) == (0, "Success! Lock released on: c11/lock\n")
    finally:
        client.session.destroy(sid)


def test_delete_key(cli, client):
    cli("kv", "put", "c12/k", "v")
    r = cli("kv", "delete", "c12/k")
    assert (r.code, r.out) == (0, "Success! Deleted key: c12/k\n")
    assert client.kv.get("c12/k").value is None


def test_delete_recurse(cli, client):
    cli("kv", "put", "c13/a", "v")
    cli("kv", "put", "c13/b/c", "v")
    r = cli("kv", "delete", "-recurse", "c13/")
    assert (r.code, r.out) == (0, "Success! Deleted keys with prefix: c13/\n")
    assert client.kv.list_prefix("c13/").value == []


def test_delete_cas(cli, client):
    cli("kv", "put", "c14/k", "v")
    index = client.kv.get("c14/k").value.modify_index
    bad = cli("kv", "delete", "-cas", f"-modify-index={index + 5}", "c14/k")
    assert (bad.code, bad.err) == (1, "Error! Did not delete key c14/k: CAS failed\n")
    assert cli("kv", "delete", "-cas", f"-modify-index={index}", "c14/k").code == 0


def test_delete_flag_conflicts(cli):
    assert cli("kv", "delete", "-cas", "-recurse", "-modify-index=1", "x").err == \
        "Cannot specify both -cas and -recurse!\n"
    assert cli("kv", "delete", "-modify-index=1", "x").err == "Cannot specify -modify-index without -cas!\n"
    assert cli("kv", "delete").err == "Error! Missing KEY argument\n"


def test_export_is_consuls_json_format(cli, client):
    client.kv.put("c15/a", b"1", flags=3)
    client.kv.put("c15/b", "<&>")
    r = cli("kv", "export", "c15/")
    assert r.code == 0
    assert r.out == (
        "[\n"
        "\t{\n"
        '\t\t"key": "c15/a",\n'
        '\t\t"flags": 3,\n'
        f'\t\t"value": "{base64.b64encode(b"1").decode()}"\n'
        "\t},\n"
        "\t{\n"
        '\t\t"key": "c15/b",\n'
        '\t\t"flags": 0,\n'
        f'\t\t"value": "{base64.b64encode(b"<&>").decode()}"\n'
        "\t}\n"
        "]\n"
    )


def test_export_of_empty_prefix_is_empty_list(cli):
    assert cli("kv", "export", "c-nothing/").out == "[]\n"


def test_import_from_stdin_file_and_literal(cli, client, tmp_path):
    entries = [{"key": "c16/a", "flags": 9, "value": base64.b64encode(b"A").decode()}]
    r = cli("kv", "import", "-", input=json.dumps(entries))
    assert (r.code, r.out) == (0, "Imported: c16/a\n")
    assert client.kv.get("c16/a").value.flags == 9
    f = tmp_path / "data.json"
    f.write_text(json.dumps([{"key": "c16/b", "flags": 0, "value": ""}]))
    assert cli("kv", "import", f"@{f}").out == "Imported: c16/b\n"
    assert cli("kv", "import", json.dumps([{"key": "c16/c", "flags": 0, "value": "Qw=="}])).code == 0
    assert client.kv.get("c16/c").value.value == b"C"


def test_export_then_import_round_trips_under_new_prefix(cli, client):
    client.kv.put("c17/x", b"\x00bin", flags=1)
    client.kv.put("c17/y/z", "t")
    exported = cli("kv", "export", "c17/").out
    r = cli("kv", "import", "-prefix=copy/", "-", input=exported)
    assert r.out == "Imported: copy/c17/x\nImported: copy/c17/y/z\n"
    copied = {p.key: (p.value, p.flags) for p in client.kv.list_prefix("copy/c17/").value}
    assert copied == {"copy/c17/x": (b"\x00bin", 1), "copy/c17/y/z": (b"t", 0)}


def test_import_garbage_is_one_error_line(cli):
    r = cli("kv", "import", "{not json")
    assert r.code == 1 and r.err.startswith("Cannot unmarshal data:") and r.err.count("\n") == 1


def test_stale_flag_and_explicit_addr_flag(cli, shared_dev_server):
    cli("kv", "put", "c18/k", "v")
    r = cli("kv", "get", "-stale", f"-http-addr={shared_dev_server.addr}", "c18/k", env={"CONSUL_HTTP_ADDR": ""})
    assert r.out == "v\n"


def test_too_many_arguments(cli):
    r = cli("kv", "get", "a", "b")
    assert (r.code, r.err) == (1, "Too many arguments (expected 1, got 2)\n")
