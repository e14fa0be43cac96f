"""Bulk import of a folder-per-person set through the API (each folder one consenting person).

Each person is one enrol call. A call that cannot reach the server, loses the connection or is
answered 429, 502, 503 or 504 is tried again after an exponential backoff with jitter (never
sooner than the server's ``Retry-After``); any other refusal is final for that person. When the
server stays away, or refuses the key itself (401/403: every call would be refused, and each one
counts towards its lockout), the run stops. :class:`BulkImport` keeps its summary current
after every person, so the caller can print it whatever ends the run, Ctrl-C included.

Subject ids of people enrolled earlier: the server names the subject a duplicate matched only
to an admin key (to an enrol key it would reveal who is enrolled). So every id the import learns
is appended to a state file (JSON lines, mode 0600, per server and key), and a rerun reports
the already enrolled with the ids recorded there, or from the server with an admin key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from facekey.client.api import ApiError, ClientError, FacekeyClient, ServerUnavailable
from facekey.errors import FacekeyError
from facekey.evaluation.datasets import image_files

log = logging.getLogger(__name__)

#: Answers that say "not now" rather than "no": worth another try after a wait.
RETRYABLE_STATUS: Final = frozenset({429, 502, 503, 504})
STATE_FILE: Final = ".facekey-import.jsonl"


@dataclass(frozen=True)
class Backoff:
    """When to try a call again: ``first_s``, doubling up to ``cap_s``, half of it random."""

    retries: int = 5
    first_s: float = 1.0
    cap_s: float = 30.0
    #: A server that asks for a longer wait than this is not waited for.
    max_retry_after_s: float = 120.0

    def delay(
        self, retry: int, error: ClientError, draw: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before retry number ``retry`` (from 1) after ``error``; None: stop."""
        if retry > self.retries or not retryable(error):
            return None
        step = min(self.cap_s, self.first_s * 2.0 ** (retry - 1))
        jitter = draw() * step / 2
        asked: float | None = error.retry_after_s if isinstance(error, ApiError) else None
        if asked is None:
            return step / 2 + jitter
        return None if asked > self.max_retry_after_s else asked + jitter


def retryable(error: ClientError) -> bool:
    """Whether another try of the same call may succeed."""
    if isinstance(error, ServerUnavailable):
        return True
    return isinstance(error, ApiError) and error.status in RETRYABLE_STATUS


class ImportState:
    """The subject ids an import learnt, one JSON line each, kept per server and API key."""

    def __init__(self, path: Path, *, server: str, api_key: str) -> None:
        self.path = path
        # Never the key itself: a digest tells the networks apart (keys are long and random).
        self._scope = {"server": server, "key": hashlib.sha256(api_key.encode()).hexdigest()[:16]}
        self._fd: int | None = None

    @contextmanager
    def opened(self) -> Iterator[dict[str, str]]:
        """Open for appending (created 0600; fails before any enrolment if it cannot be
        written) and yield the ids recorded earlier for this server and key."""
        known = self._read()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise FacekeyError(
                f"cannot write the import state file {self.path} ({exc.strerror}); "
                "choose another place for it"
            ) from exc
        try:
            yield known
        finally:
            os.close(self._fd)
            self._fd = None

    def record(self, person: str, subject_id: str) -> None:
        """Append one person's subject id (a line is written whole, so a crash loses no other)."""
        if self._fd is None:
            raise RuntimeError("the import state file is not open")
        at = datetime.now(UTC).isoformat(timespec="seconds")
        line = self._scope | {"person": person, "subject_id": subject_id, "at": at}
        os.write(self._fd, (json.dumps(line) + "\n").encode())

    def _read(self) -> dict[str, str]:
        known: dict[str, str] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return known
        for text in lines:
            try:
                line = json.loads(text)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if isinstance(line, dict) and all(line.get(k) == v for k, v in self._scope.items()):
                known[str(line.get("person"))] = str(line.get("subject_id"))
        return known


@dataclass
class ImportSummary:
    """What happened to each person so far; :meth:`as_json` is the command's output."""

    people: int
    enrolled: dict[str, str] = field(default_factory=dict)
    already_enrolled: dict[str, str | None] = field(default_factory=dict)
    refused: dict[str, ApiError] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None
    state_file: Path | None = None

    @property
    def done(self) -> int:
        """People with an outcome (the rest were not tried)."""
        outcomes: tuple[dict[str, Any], ...] = (
            self.enrolled,
            self.already_enrolled,
            self.refused,
            self.failed,
        )
        return sum(len(o) for o in outcomes)

    def as_json(self) -> dict[str, Any]:
        known = self.enrolled | {p: s for p, s in self.already_enrolled.items() if s}
        reasons = {p: str(e) for p, e in self.refused.items()} | self.failed | self.skipped
        return {
            "people": self.people,
            "enrolled": len(self.enrolled),
            "already_enrolled": len(self.already_enrolled),
            "refused": dict(Counter(_title(e) for e in self.refused.values())),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "not_tried": self.people - self.done - len(self.skipped),
            "complete": self.stopped is None,
            "stopped": self.stopped,
            "subjects": dict(sorted(known.items())),
            "ids_not_known": sorted(p for p, s in self.already_enrolled.items() if not s),
            "reasons": dict(sorted(reasons.items())),
            "state_file": str(self.state_file) if self.state_file else None,
        }


class BulkImport:
    """One run of the import; :attr:`summary` is current after every person."""

    def __init__(
        self,
        client: FacekeyClient,
        people: Path,
        *,
        terms_version: str,
        per_person: int = 1,
        backoff: Backoff | None = None,
        state: ImportState | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._folders = sorted(p for p in people.iterdir() if p.is_dir())
        self._terms_version = terms_version
        self._per_person = per_person
        self._backoff = backoff or Backoff()
        self._state = state
        self._sleep = sleep
        self._current: str | None = None
        self.summary = ImportSummary(len(self._folders), state_file=state.path if state else None)

    def run(self, progress: Callable[[int], None] | None = None) -> ImportSummary:
        """Enrol every person folder in turn, until the end or a reason to stop."""
        if self._state is None:
            return self._run({}, progress)
        with self._state.opened() as known:
            return self._run(known, progress)

    def stop(self, reason: str) -> ImportSummary:
        """Record that the run ended early (Ctrl-C, an error) while enrolling someone, who may
        or may not be enrolled now."""
        if self._current is not None:
            self.summary.failed[self._current] = f"{reason} during the call: enrolled or not"
            self._current = None
        self.summary.stopped = reason
        return self.summary

    def _run(self, known: dict[str, str], progress: Callable[[int], None] | None) -> ImportSummary:
        for folder in self._folders:
            self._current = folder.name
            stop = self._person(folder, known)
            self._current = None
            if progress:
                progress(1)
            if stop:
                self.summary.stopped = stop
                break
        return self.summary

    def _person(self, folder: Path, known: dict[str, str]) -> str | None:
        """Enrol one person; returns why the whole run must stop, if it must."""
        name, summary = folder.name, self.summary
        images = image_files(folder)[: self._per_person]
        if not images:
            summary.skipped[name] = "no image files"
            return None
        try:
            body = self._enrol(images)
        except ApiError as exc:
            return self._refused(name, exc, known)
        except ServerUnavailable as exc:
            summary.failed[name] = str(exc)
            return f"the server is unavailable: {exc}"
        except (FacekeyError, OSError) as exc:
            summary.failed[name] = str(exc)
            return None
        summary.enrolled[name] = str(body["subject_id"])
        self._record(name, summary.enrolled[name])
        return None

    def _refused(self, name: str, exc: ApiError, known: dict[str, str]) -> str | None:
        if exc.slug == "duplicate-enrolment":
            disclosed = exc.problem.get("existing_subject_id")
            if isinstance(disclosed, str):
                self._record(name, disclosed)
            self.summary.already_enrolled[name] = disclosed or known.get(name)
            return None
        if exc.status >= 500 or exc.status in RETRYABLE_STATUS:
            self.summary.failed[name] = str(exc)
            return None
        self.summary.refused[name] = exc
        if exc.status in (401, 403):
            return f"the server refuses this key: {exc}"
        return None

    def _enrol(self, images: list[Path]) -> dict[str, Any]:
        retry = 0
        while True:
            try:
                return self._client.enrol(
                    images, terms_version=self._terms_version, channel="import"
                )
            except ClientError as exc:
                retry += 1
                wait = self._backoff.delay(retry, exc)
                if wait is None:
                    raise
                log.warning("%s; trying again in %.1f s (retry %d)", exc, wait, retry)
                self._sleep(wait)

    def _record(self, person: str, subject_id: str) -> None:
        if self._state is not None:
            self._state.record(person, subject_id)


def _title(exc: ApiError) -> str:
    return str(exc.problem.get("title") or exc.status)
