"""raftnet.keepalive.KeepAliveSender, the thread that sends a starved leader's heartbeats, with fake
channels (what it sends where, and its life: renewed credentials, idle channels, a failing pass, a
retuned interval). The driver's side, which heartbeats to give, is tests/raft/test_keepalive.py."""

from __future__ import annotations

import threading
import time

from swarmpy.manager.raftnet import keepalive
from swarmpy.manager.raftnet.keepalive import KeepAliveSender
from swarmpy.raft.messages import Message, MessageType


class FakeFuture:
    def __init__(self) -> None:
        self.cancelled = False

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        self.cancelled = True


class FakeChannel:
    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.closed = False
        self.sent: list[tuple[bytes, float]] = []

    def unary_unary(self, method, request_serializer, response_deserializer):
        channel = self

        class Call:
            def future(self, request, timeout):
                channel.sent.append((request, timeout))
                return FakeFuture()
        return Call()

    def close(self) -> None:
        self.closed = True


class Scene:
    """A sender wired to fakes: `beats` is what the driver gives on each pass."""

    def __init__(self, interval: float = 0.01) -> None:
        self.channels: list[FakeChannel] = []
        self.beats: list[Message] = []
        self.passes = 0
        self.fail_next = 0
        self.interval = interval
        self.lock = threading.Lock()
        self.sender = KeepAliveSender(self.source, {2: "m2:4242", 3: "m3:4242"}.get, self.dial,
                                      lambda: self.interval, name="test-keepalive")

    def source(self, now: float) -> list[Message]:
        with self.lock:
            self.passes += 1
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("planted failure")
            return list(self.beats)

    def dial(self, addr: str) -> FakeChannel:
        channel = FakeChannel(addr)
        self.channels.append(channel)
        return channel

    def wait_passes(self, more: int, timeout: float = 5.0) -> None:
        with self.lock:
            goal = self.passes + more
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.passes >= goal:
                    return
            time.sleep(0.005)
        raise AssertionError(f"the sender made {self.passes} passes, not {goal}")


def beat(to: int) -> Message:
    return Message(type=MessageType.HEARTBEAT, to=to, frm=1, term=7)


def test_heartbeats_go_to_each_peer_on_one_channel_each_and_all_close_at_stop():
    scene = Scene()
    scene.beats = [beat(2), beat(3)]
    scene.sender.start()
    try:
        scene.wait_passes(3)
    finally:
        scene.sender.stop()
    assert sorted(c.addr for c in scene.channels) == ["m2:4242", "m3:4242"], "one channel per peer, reused"
    assert all(len(c.sent) >= 2 for c in scene.channels)
    assert all(c.closed for c in scene.channels)
    assert scene.sender.sent >= 4


def test_renew_dials_afresh_and_closes_the_old_channels():
    scene = Scene()
    scene.beats = [beat(2)]
    scene.sender.start()
    try:
        scene.wait_passes(2)
        first = scene.channels[0]
        scene.sender.renew()
        scene.wait_passes(2)
        assert first.closed, "the channel with the old certificate must go"
        assert len(scene.channels) == 2 and not scene.channels[1].closed and scene.channels[1].sent
    finally:
        scene.sender.stop()


def test_a_failing_pass_is_logged_and_the_thread_goes_on(caplog):
    scene = Scene()
    scene.beats = [beat(3)]
    scene.fail_next = 3
    scene.sender.start()
    try:
        scene.wait_passes(6)
    finally:
        scene.sender.stop()
    assert scene.sender.failed_passes == 3
    assert scene.channels and scene.channels[0].sent, "passes after the failures send again"
    assert sum("keep-alive pass failed" in r.getMessage() for r in caplog.records) == 1, "logged once, not per pass"


def test_the_interval_is_read_on_every_pass_and_sets_the_calls_timeout():
    scene = Scene(interval=0.01)
    scene.beats = [beat(2)]
    scene.sender.start()
    try:
        scene.wait_passes(2)
        scene.interval = 0.02  # the Raft tick retuned
        scene.wait_passes(3)
    finally:
        scene.sender.stop()
    timeouts = [timeout for _, timeout in scene.channels[0].sent]
    assert timeouts[0] == 0.04 and timeouts[-1] == 0.08


def test_a_channel_unused_for_long_is_closed(monkeypatch):
    monkeypatch.setattr(keepalive, "IDLE_CHANNEL", 0.05)
    scene = Scene()
    scene.beats = [beat(2)]
    scene.sender.start()
    try:
        scene.wait_passes(2)
        with scene.lock:
            scene.beats = []  # the loop ticks again: nothing to send
        scene.wait_passes(1)
        time.sleep(0.1)
        scene.wait_passes(2)
        assert scene.channels[0].closed
    finally:
        scene.sender.stop()
