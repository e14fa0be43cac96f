"""Which files a process writes, seen by the kernel.

:class:`WriteWatch` marks every mounted filesystem with fanotify (``FAN_MODIFY`` and
``FAN_CLOSE_WRITE``, with the writer's pid), so a file that a process creates, writes or
truncates anywhere is seen even when it is deleted at once, whatever library wrote it (Python,
OpenCV, onnxruntime, LiteRT). fanotify needs CAP_SYS_ADMIN (root, as in CI); without it the
watch falls back to inotify on the folders given, which sees every write there but not
elsewhere (``kernel_wide`` says which).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_FAN_CLOEXEC, _FAN_NONBLOCK = 0x1, 0x2
_FAN_MARK_ADD, _FAN_MARK_FILESYSTEM = 0x1, 0x100
_FAN_MODIFY, _FAN_CLOSE_WRITE = 0x2, 0x8
_EVENT = struct.Struct("IBBHQiI")  # fanotify_event_metadata
_IN_MODIFY, _IN_CLOSE_WRITE, _IN_CREATE, _IN_MOVED_TO = 0x2, 0x8, 0x100, 0x80
_IN_EVENT = struct.Struct("iIII")
_PSEUDO = ("proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs")


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_mark.argtypes = [
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_char_p,
    ]
    return libc


def _mounts() -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        kind = fields[fields.index("-") + 1]
        if kind not in _PSEUDO:
            mounts.append(fields[4].replace("\\040", " "))
    return sorted(set(mounts))


class WriteWatch:
    """Files written while the watch is open, with the writing process's id."""

    def __init__(self, fallback: Iterable[Path] = ()) -> None:
        self._libc = _libc()
        self._fallback = list(fallback)
        self._fd = -1
        self._inotify: dict[int, Path] = {}
        self.kernel_wide = False
        self.writes: list[tuple[int | None, str]] = []

    def __enter__(self) -> WriteWatch:
        self._fd = self._libc.fanotify_init(
            _FAN_CLOEXEC | _FAN_NONBLOCK, os.O_RDONLY | os.O_LARGEFILE
        )
        if self._fd >= 0:
            marked = [m for m in _mounts() if self._mark(m)]
            self.kernel_wide = "/" in marked
        else:
            self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            for folder in self._fallback:
                self._watch_tree(folder)
        return self

    def _mark(self, mount: str) -> bool:
        mask = _FAN_MODIFY | _FAN_CLOSE_WRITE
        flags = _FAN_MARK_ADD | _FAN_MARK_FILESYSTEM
        return self._libc.fanotify_mark(self._fd, flags, mask, -100, mount.encode()) == 0

    def _watch_tree(self, folder: Path) -> None:
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_CREATE | _IN_MOVED_TO
        for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
            wd = self._libc.inotify_add_watch(self._fd, str(path).encode(), mask)
            if wd >= 0:
                self._inotify[wd] = path

    def collect(self) -> list[tuple[int | None, str]]:
        """Read the events so far into :attr:`writes`."""
        while select.select([self._fd], [], [], 0.05)[0]:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            self._parse(data)
        return self.writes

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset < len(data):
            if self.kernel_wide or not self._inotify:
                length, _, _, _, _, fd, pid = _EVENT.unpack_from(data, offset)
                if fd >= 0:
                    self.writes.append((pid, os.readlink(f"/proc/self/fd/{fd}")))
                    os.close(fd)
            else:
                wd, _, _, size = _IN_EVENT.unpack_from(data, offset)
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0").decode()
                self.writes.append((None, str(self._inotify[wd] / name)))
                length = 16 + size
            offset += length

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.collect()
        os.close(self._fd)
