"""The pysyncobj internals raft_adapter.py relies on are there, as it expects them.

An upgrade of pysyncobj that moves any of them fails here (pyproject pins the tested version).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pickle
import socket
from pathlib import Path

import pysyncobj.serializer as pso_serializer
import pysyncobj.syncobj as pso_syncobj
import pysyncobj.tcp_connection as pso_tcp
import pytest
from pysyncobj import SyncObjConf
from pysyncobj.journal import FileJournal, MetaStorer
from pysyncobj.node import TCPNode
from pysyncobj.serializer import Serializer
from pysyncobj.tcp_connection import TcpConnection

from meshctl.server import raft_adapter as adapter


def source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def test_the_installed_pysyncobj_is_the_pinned_one() -> None:
    assert importlib.metadata.version("pysyncobj") == adapter.PYSYNCOBJ_VERSION
    adapter.check_version()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f'"pysyncobj=={adapter.PYSYNCOBJ_VERSION}"' in pyproject


def test_pysyncobj_encodes_where_the_adapter_replaces_its_pickle() -> None:
    # the module globals install() replaces, and the code that goes through them
    assert "pickle.dumps(message)" in source(TcpConnection.send)
    assert "pickle.loads(zlib.decompress(data))" in source(TcpConnection._TcpConnection__processParseMessage)
    assert "pickle.loads(command[1:])" in source(pso_syncobj.SyncObj._SyncObj__doApplyCommand)
    assert "pickle.loads(command[1:])" in source(pso_syncobj.SyncObj._SyncObj__parseChangeClusterRequest)
    assert "pickle.dumps(cmd)" in source(pso_syncobj.replicated)
    assert "pickle.dumps(entries[0])" in source(pso_syncobj.SyncObj._SyncObj__sendAppendEntries)
    assert "pickle.loads(self.__recvTransmission)" in source(pso_syncobj.SyncObj._SyncObj__onMessageReceived)
    assert "pickle.dump(data, g)" in source(Serializer.serialize)
    assert "pickle.load(g)" in source(Serializer.deserialize)
    assert "loads(open(self.__path, 'rb').read())" in source(MetaStorer.getMeta)
    assert "f.write(dumps(meta))" in source(MetaStorer.storeMeta)
    assert "createJournal(self.__conf.journalFile)" in source(pso_syncobj.SyncObj.__init__)
    # entries of this size or more go out in (mis-assembled) chunks: raft.py keeps below it
    assert "len(entries[0][0]) >= batchSizeBytes" in source(pso_syncobj.SyncObj._SyncObj__sendAppendEntries)
    # every pickle-using module pysyncobj has is covered (batteries/utility run no network code of ours)
    adapter.install()
    for module, name, value in adapter.PATCHES:
        assert getattr(module, name) is value
    assert {(m.__name__, n) for m, n, _ in adapter.PATCHES} == {
        ("pysyncobj.tcp_connection", "pickle"), ("pysyncobj.syncobj", "pickle"), ("pysyncobj.serializer", "pickle"),
        ("pysyncobj.journal", "loads"), ("pysyncobj.journal", "dumps"), ("pysyncobj.syncobj", "createJournal")}
    assert pso_tcp.pickle is adapter.TRANSPORT_CODEC and pso_serializer.pickle is adapter.NETWORK_CODEC


def test_signatures_the_adapter_calls() -> None:
    assert adapter.signature_of(adapter._original_create_journal) == "(journalFile=None)"
    assert adapter.signature_of(FileJournal.add) == "(self, command, idx, term)"
    assert adapter.signature_of(FileJournal.__init__) == "(self, journalFile)"
    assert adapter.signature_of(pso_syncobj.SyncObj.__init__).startswith("(self, selfNode, otherNodes, conf=None")
    conf = SyncObjConf(bindAddress="127.0.0.1:1", appendEntriesBatchSizeBytes=5, serializer=print,
                       deserializer=print, fullDumpFile="x")
    assert (conf.bindAddress, conf.appendEntriesBatchSizeBytes) == ("127.0.0.1:1", 5)


def test_private_state_the_adapter_reads(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    journal = str(tmp_path / "journal.bin")
    conf = SyncObjConf(autoTick=False, journalFile=journal, bindAddress=f"127.0.0.1:{port}",
                       appendEntriesPeriod=0.001, raftMinTimeout=0.01, raftMaxTimeout=0.02)
    obj = adapter.AdaptedSyncObj(f"127.0.0.1:{port}", [], conf, sync_journal=True)
    try:
        transport = obj._SyncObj__transport
        assert callable(transport.setOnMessageReceivedCallback) and callable(transport.setOnUtilityMessageCallback)
        assert callable(obj._SyncObj__onMessageReceived)
        assert transport._onUtilityMessageCallbacks == {}  # syncobj_admin's commands are off
        log = obj._SyncObj__raftLog
        assert isinstance(log, adapter.SyncedFileJournal)
        assert log._FileJournal__journalFile._ResizableFile__f.fileno() >= 0
        for _ in range(2000):  # until it elected itself
            obj.doTick(0.01)
            if obj.noop_index is not None:
                break
        assert obj.noop_index == 2  # a single voter leads at once
        assert isinstance(obj._SyncObj__raftMatchIndex, dict) and isinstance(obj._SyncObj__lastResponseTime, dict)
        assert obj.peer_progress() == {}  # no other voter
        seen = []
        obj.hook_messages(lambda node, message, deliver: seen.append(message))
        transport._onMessageReceived(TCPNode("127.0.0.1:9"), {"type": "timeout_now", "term": 0})
        assert seen == [{"type": "timeout_now", "term": 0}]
    finally:
        obj.destroy()


def test_a_joining_server_holds_its_elections_until_a_leader_is_known(tmp_path: Path) -> None:
    # the election check hold_elections defers, and the deadline it pushes
    assert "self.__raftElectionDeadline < monotonicTime()" in source(pso_syncobj.SyncObj._onTick)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = SyncObjConf(autoTick=False, bindAddress=f"127.0.0.1:{port}", appendEntriesPeriod=0.001,
                       raftMinTimeout=0.01, raftMaxTimeout=0.02)
    # alone (no partner connected, none answering) it would elect itself at once; held, it does not
    obj = adapter.AdaptedSyncObj(f"127.0.0.1:{port}", [], conf, hold_elections=True)
    try:
        for _ in range(200):
            obj.doTick(0.001)
        assert obj.holding_elections and obj.noop_index is None and obj._getLeader() is None
        obj._holding = False  # what a leader's first append_entries does (tick: leader known)
        for _ in range(2000):
            obj.doTick(0.01)
            if obj.noop_index is not None:
                break
        assert obj.noop_index is not None
    finally:
        obj.destroy()


class Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_the_codec_round_trips_pysyncobj_data_and_refuses_pickles(tmp_path: Path) -> None:
    message = {"type": "append_entries", "term": 3, "commit_index": 7, "prevLogIdx": 6, "prevLogTerm": 2,
               "entries": [(b"\x00abc", 7, 3)], "node": TCPNode("127.0.0.1:8300"), "set": {1, 2},
               "big": 2 ** 70, "float": 1.5, "none": None, "nested": {1: [True, "x"]}}
    assert adapter.TRANSPORT_CODEC.loads(adapter.TRANSPORT_CODEC.dumps(message)) == message
    target = tmp_path / "pwned"
    for codec in (adapter.TRANSPORT_CODEC, adapter.NETWORK_CODEC):
        with pytest.raises(adapter.FormatError):
            codec.loads(pickle.dumps(Exploit(str(target)), protocol=2))
    with pytest.raises(adapter.FormatError):  # the legacy reader (local files) refuses it too
        adapter.decode_legacy(pickle.dumps(Exploit(str(target)), protocol=2))
    assert not target.exists()
    with pytest.raises(adapter.FormatError):  # a well-formed value that is no Raft message
        adapter.TRANSPORT_CODEC.loads(adapter.encode(["add", "127.0.0.1:1"]))
    with pytest.raises(TypeError):
        adapter.encode({"x": object()})
    assert adapter.decode_legacy(pickle.dumps({"v": b"\xff\x00", "s": {1}}, protocol=2)) == {"v": b"\xff\x00", "s": {1}}


def test_followers_keep_the_entries_they_share_with_the_leader(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = SyncObjConf(autoTick=False, bindAddress=f"127.0.0.1:{port}")
    obj = adapter.AdaptedSyncObj(f"127.0.0.1:{port}", ["127.0.0.1:9"], conf)
    try:
        log = obj._SyncObj__raftLog  # [no-op 1/0], then entries 2..4 of term 1
        for idx in (2, 3, 4):
            log.add(b"\x00e%d" % idx, idx, 1)
        leader = TCPNode("127.0.0.1:9")

        def msg(prev: int, prev_term: int, entries: list[tuple[bytes, int, int]], term: int = 1) -> dict:
            return {"type": "append_entries", "term": term, "commit_index": 1, "prevLogIdx": prev,
                    "prevLogTerm": prev_term, "entries": entries}

        # re-sent entries it has (and the leader's term at its end): nothing to delete or add
        out = obj._filter_append_entries(leader, msg(1, 0, [(b"\x00e2", 2, 1), (b"\x00e3", 3, 1)]))
        assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (4, 1, [])
        # a heartbeat from behind its end
        out = obj._filter_append_entries(leader, msg(2, 1, []))
        assert (out["prevLogIdx"], out["entries"]) == (4, [])
        # overlapping: only the new entry is appended, after the shared ones
        out = obj._filter_append_entries(leader, msg(3, 1, [(b"\x00e4", 4, 1), (b"\x00e5", 5, 1)]))
        assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (4, 1, [(b"\x00e5", 5, 1)])
        # a real conflict (entry 3 of another term): from there on, as pysyncobj does it
        out = obj._filter_append_entries(leader, msg(2, 1, [(b"\x00x3", 3, 2)], term=2))
        assert (out["prevLogIdx"], out["entries"]) == (2, [(b"\x00x3", 3, 2)])
        # the same "send from 5" answer is not repeated for a burst of messages beyond its end
        assert obj._filter_append_entries(leader, msg(9, 1, [])) is not None
        assert obj._filter_append_entries(leader, msg(10, 1, [])) is None
        # delivered, a re-sent message leaves the log as it was
        obj._SyncObj__onMessageReceived(leader, obj._filter_append_entries(
            leader, msg(1, 0, [(b"\x00e2", 2, 1), (b"\x00e3", 3, 1)])))
        assert [e[1] for e in log[:]] == [1, 2, 3, 4]
    finally:
        obj.destroy()
