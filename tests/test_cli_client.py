"""The client commands against the real app behind a real socket, and against bad networks.

The app runs in-process behind :class:`http_front.Front`, a loopback HTTP server that can also
drop, cut, stall or refuse connections and answer 429/503 or a proxy's HTML page; "nothing
listening" is a port just closed.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from cli_helpers import people_folder, runner
from facekey.cli import app
from facekey.client import ApiError, ServerUnavailable
from facekey.client.bulk import Backoff
from facekey.config import Settings
from facekey.engines.face_reid import FaceReidEngine
from facekey.flows.devices import add_device, add_merchant, add_store
from facekey.flows.platform import Platform
from facekey.flows.tenancy import create_network
from facekey.service.app import create_app
from facekey.store.tables import Authorization
from http_front import Front

EXIT_UNAVAILABLE, EXIT_REFUSED = 3, 4


@dataclass(frozen=True)
class Network:
    """A network on the served app, with a terminal registered at one store."""

    url: str
    keys: dict[str, str]
    merchant_id: str
    store_id: str
    device_id: str
    secret: str


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, reid_engine: FaceReidEngine
) -> Iterator[tuple[Platform, TestClient]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("cli-client"))
    platform = Platform.open(settings, engines=[reid_engine])
    try:
        with TestClient(create_app(settings, platform=platform)) as client:
            yield platform, client
    finally:
        platform.close()


@pytest.fixture
def front(served: tuple[Platform, TestClient]) -> Iterator[Front]:
    serving = Front(served[1])
    try:
        yield serving
    finally:
        serving.close()


@pytest.fixture
def network(served: tuple[Platform, TestClient], front: Front) -> Network:
    """A fresh network (an empty gallery) for each test."""
    platform = served[0]
    created = create_network(
        platform.database, platform.vault, f"cli-{uuid.uuid4().hex}", engine="face-reid-0095"
    )
    network_id = created.network_id
    merchant = add_merchant(platform.database, network_id, "Corner Shop").merchant_id
    store = add_store(platform.database, network_id, merchant, "High Street").store_id
    device = add_device(platform.database, platform.vault, network_id, store, "till 1")
    return Network(front.url, created.api_keys, merchant, store, device.device_id, device.secret)


@pytest.fixture
def people(lfw: Path, tmp_path: Path) -> Path:
    """Three people, one photo each."""
    return people_folder(lfw.glob("A*_0001.jpg"), tmp_path / "people")


def nothing_listening() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run ``facekey ARGS`` in-process: (exit status, stdout, stderr)."""
    result = runner.invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def error_line(stderr: str) -> str:
    """The one line a failed command printed on stderr."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def pay(network: Network, image: Path, *extra: str) -> tuple[int, str, str]:
    return cli(
        "checkout",
        str(image),
        "--amount",
        "1250",
        "--currency",
        "EUR",
        "--merchant",
        network.merchant_id,
        "--store",
        network.store_id,
        "--key",
        network.keys["terminal"],
        "--server",
        network.url,
        *extra,
    )


def test_the_verbs_of_a_subjects_life(
    network: Network, lfw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, keys = network.url, network.keys
    status, out, _ = cli(
        "enrol", str(lfw / "Aaron_Sorkin_0001.jpg"), "--key", keys["enrol"], "--server", url
    )
    assert status == 0
    subject = json.loads(out)["subject_id"]
    probe = str(lfw / "Aaron_Sorkin_0002.jpg")

    status, out, _ = cli("verify", subject, probe, "--key", keys["terminal"], "--server", url)
    assert status == 0 and json.loads(out)["match"] is True
    status, out, _ = cli(
        "verify", subject, str(lfw / "Aaron_Peirsol_0001.jpg"), "--key", keys["enrol"],
        "--server", url,
    )  # fmt: skip
    assert status == 0 and json.loads(out)["match"] is False

    monkeypatch.setenv("FACEKEY_DEVICE_ID", network.device_id)
    monkeypatch.setenv("FACEKEY_DEVICE_SECRET", network.secret)
    status, out, _ = pay(network, Path(probe))
    assert status == 0, out
    assert json.loads(out)["decision"] == "approved"

    status, out, _ = cli("export", subject, "--key", keys["privacy"], "--server", url)
    assert status == 0 and json.loads(out)["subject_id"] == subject
    status, out, _ = cli("withdraw", subject, "payment", "--key", keys["privacy"], "--server", url)
    assert status == 0 and json.loads(out)["purpose"] == "payment"
    status, _, err = cli("verify", subject, probe, "--key", keys["terminal"], "--server", url)
    assert status == EXIT_REFUSED and "404" in error_line(err)

    status, _, err = cli("erase", subject, "--key", keys["privacy"], "--server", url, input="n\n")
    assert status == 1 and "Aborted" in err  # nothing erased without a yes
    status, out, _ = cli("erase", subject, "--yes", "--key", keys["privacy"], "--server", url)
    assert status == 0 and json.loads(out)["erased"] is True
    status, _, err = cli("export", subject, "--key", keys["privacy"], "--server", url)
    assert status == EXIT_REFUSED and "404" in error_line(err)


def test_checkout_signs_with_a_secret_it_never_shows(network: Network, lfw: Path) -> None:
    image = lfw / "Aaron_Sorkin_0002.jpg"
    args = ("--device", network.device_id)
    result = runner.invoke(
        app,
        [
            "checkout", str(image), "--amount", "990", "--currency", "EUR",
            "--merchant", network.merchant_id, "--store", network.store_id,
            "--key", network.keys["terminal"], "--server", network.url, *args,
        ],
        input=network.secret + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.split("\n", 1)[1])["decision"] == "declined"
    assert network.secret not in result.output

    forged = "A" * 43
    result = runner.invoke(
        app,
        [
            "checkout", str(image), "--amount", "990", "--currency", "EUR",
            "--merchant", network.merchant_id, "--store", network.store_id,
            "--key", network.keys["terminal"], "--server", network.url, *args,
        ],
        input=forged + "\n",
    )  # fmt: skip
    assert result.exit_code == EXIT_REFUSED
    line = error_line(result.stderr)
    assert "401" in line and "signature" in line and "request_id" in line
    assert forged not in result.output


def test_step_up_is_a_signed_call(network: Network, lfw: Path) -> None:
    status, _, err = cli(
        "step-up", str(uuid.uuid4()), str(lfw / "Aaron_Sorkin_0002.jpg"),
        "--phone-digits", "1234", "--key", network.keys["terminal"], "--server", network.url,
        "--device", network.device_id, "--device-secret", network.secret,
    )  # fmt: skip
    # Past the signature check (a bad one is 401): the authorization does not exist.
    assert status == EXIT_REFUSED and " 404 " in error_line(err)


CALLS = {
    "enrol": ["enrol", "{image}"],
    "identify": ["identify", "{image}"],
    "verify": ["verify", "s1", "{image}"],
    "export": ["export", "s1"],
    "withdraw": ["withdraw", "s1", "payment"],
    "erase": ["erase", "s1", "--yes"],
    "checkout": [
        "checkout", "{image}", "--amount", "1", "--currency", "EUR", "--merchant", "m",
        "--store", "s", "--device", "d1", "--device-secret", "B" * 43,
    ],
    "step-up": [
        "step-up", "a1", "{image}", "--pin", "1234", "--device", "d1", "--device-secret", "B" * 43,
    ],
    "import": ["import", "{people}", "--retries", "1", "--backoff", "0.01"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(CALLS))
def test_a_server_that_is_down_is_one_line(command: str, lfw: Path, people: Path) -> None:
    url = nothing_listening()
    image = str(lfw / "Aaron_Sorkin_0001.jpg")
    args = [a.format(image=image, people=people) for a in CALLS[command]]
    status, out, err = cli(*args, "--key", "fk_x", "--server", url)
    assert status == EXIT_UNAVAILABLE
    line = error_line("\n".join(x for x in err.splitlines() if "trying again" not in x))
    assert f"cannot connect to the facekey server at {url}" in line
    assert "Traceback" not in err
    if command == "import":
        assert json.loads(out)["failed"] == 1  # the summary is printed all the same


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("drop", "dropped the connection"),
        ("cut", "dropped the connection"),
        ("hang", "did not answer in time"),
    ],
)
def test_a_dropped_or_stalled_connection_is_one_line(
    network: Network, front: Front, lfw: Path, action: str, says: str
) -> None:
    front.script([action])
    status, _, err = cli(
        "identify", str(lfw / "Aaron_Sorkin_0001.jpg"), "--key", network.keys["terminal"],
        "--server", network.url, "--timeout", "1",
    )  # fmt: skip
    line = error_line(err)
    assert status == EXIT_UNAVAILABLE
    assert says in line and network.url in line and "request_id" in line


def test_a_problem_is_one_line_with_its_title_detail_and_request_id(
    network: Network, front: Front, lfw: Path
) -> None:
    status, _, err = cli(
        "enrol", str(lfw / "Aaron_Sorkin_0001.jpg"), "--key", network.keys["terminal"],
        "--server", network.url,
    )  # fmt: skip
    line = error_line(err)
    assert status == EXIT_REFUSED
    assert f"POST {network.url}/v1/subjects answered 403" in line
    assert "scope" in line  # the title and detail
    request_id = line.rsplit("request_id ", 1)[1].rstrip(")")
    assert len(request_id) >= 8

    front.script(["html"])
    status, _, err = cli(
        "identify", str(lfw / "Aaron_Sorkin_0001.jpg"), "--key", network.keys["terminal"],
        "--server", network.url,
    )  # fmt: skip
    assert status == EXIT_REFUSED
    assert "502" in error_line(err) and "not a facekey answer" in err


def test_debug_shows_the_traceback(lfw: Path) -> None:
    url = nothing_listening()
    args = ["identify", str(lfw / "Aaron_Sorkin_0001.jpg"), "--key", "k", "--server", url]
    assert isinstance(runner.invoke(app, ["--debug", *args]).exception, ServerUnavailable)
    shown = subprocess.run(
        [sys.executable, "-m", "facekey.cli", "--debug", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode != 0 and "Traceback" in shown.stderr


def test_import_retries_with_backoff_and_honours_retry_after(
    network: Network, front: Front, people: Path
) -> None:
    front.script(["drop", 503, 429, "forward"], retry_after="1")
    started = time.monotonic()
    status, out, err = cli(
        "import", str(people), "--key", network.keys["enrol"], "--server", network.url,
        "--backoff", "0.01",
    )  # fmt: skip
    summary = json.loads(out)
    assert status == 0, err
    assert summary["enrolled"] == 3 and summary["complete"] is True
    assert [a for _, _, a in front.log] == ["drop", 503, 429, "forward", "forward", "forward"]
    assert time.monotonic() - started >= 2.0  # two answers that asked for a second each


def test_import_never_retries_a_refusal(
    network: Network, front: Front, people: Path, lfw: Path
) -> None:
    blank = people / "Nobody"
    blank.mkdir()
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank / "blank.jpg")
    (people / "No_Photos").mkdir()
    status, out, _ = cli(
        "import", str(people), "--key", network.keys["enrol"], "--server", network.url
    )
    summary = json.loads(out)
    assert status == 1
    assert summary["enrolled"] == 3 and summary["skipped"] == 1
    assert sum(summary["refused"].values()) == 1
    assert "422" in summary["reasons"]["Nobody"]
    assert len(front.log) == 4  # one call per person with a photo, none again


def test_a_rerun_reports_the_already_enrolled_with_their_ids(
    network: Network, people: Path, tmp_path: Path
) -> None:
    def run(key: str, *extra: str) -> dict[str, object]:
        status, out, err = cli("import", str(people), "--key", key, "--server", network.url, *extra)
        assert status == 0, err
        summary: dict[str, object] = json.loads(out)
        return summary

    first = run(network.keys["enrol"])
    assert first["enrolled"] == 3
    state = people / ".facekey-import.jsonl"
    assert state.stat().st_mode & 0o777 == 0o600
    assert network.keys["enrol"] not in state.read_text()

    again = run(network.keys["enrol"])
    assert again["enrolled"] == 0 and again["already_enrolled"] == 3
    assert again["subjects"] == first["subjects"]  # from the state file

    elsewhere = run(network.keys["enrol"], "--state", str(tmp_path / "fresh.jsonl"))
    assert elsewhere["subjects"] == {}  # an enrol key is not told who a duplicate is
    assert elsewhere["ids_not_known"] == sorted(first["subjects"])  # type: ignore[call-overload]

    admin = run(network.keys["admin"], "--state", str(tmp_path / "admin.jsonl"))
    assert admin["subjects"] == first["subjects"]  # an admin key is


def test_import_stops_with_its_summary_when_the_server_goes_away(
    network: Network, front: Front, people: Path
) -> None:
    front.script(["forward", "down"])
    status, out, _ = cli(
        "import", str(people), "--key", network.keys["enrol"], "--server", network.url,
        "--retries", "2", "--backoff", "0.2",
    )  # fmt: skip
    summary = json.loads(out)
    assert status == EXIT_UNAVAILABLE
    assert (summary["enrolled"], summary["failed"], summary["not_tried"]) == (1, 1, 1)
    assert summary["complete"] is False and "unavailable" in summary["stopped"]
    (person, subject), *_ = summary["subjects"].items()
    state = (people / ".facekey-import.jsonl").read_text()
    assert person in state and subject in state


def test_import_with_a_refused_key_stops_at_once(
    network: Network, front: Front, people: Path
) -> None:
    status, out, _ = cli(
        "import", str(people), "--key", network.keys["terminal"], "--server", network.url
    )
    summary = json.loads(out)
    assert status == EXIT_REFUSED
    assert summary["not_tried"] == 2 and len(front.log) == 1


def test_import_prints_its_summary_after_ctrl_c(
    network: Network, front: Front, people: Path
) -> None:
    front.script(["forward", "hang"])
    process = subprocess.Popen(
        [
            sys.executable, "-m", "facekey.cli", "import", str(people),
            "--key", network.keys["enrol"], "--server", network.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert front.hanging.wait(60), "the import never reached the second person"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    summary = json.loads(out)
    assert process.returncode == 130, err
    assert (summary["enrolled"], summary["failed"], summary["not_tried"]) == (1, 1, 1)
    assert summary["stopped"] == "interrupted" and "Traceback" not in err


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    backoff = Backoff(retries=4, first_s=1.0, cap_s=5.0, max_retry_after_s=60)
    down = ServerUnavailable("http://x", "GET /", "refused", "refused", "r1")
    assert [backoff.delay(n, down, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [backoff.delay(n, down, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff.delay(5, down, lambda: 0.0) is None  # retries spent

    busy = ApiError(503, {"title": "Busy"}, retry_after_s=7)
    assert backoff.delay(1, busy, lambda: 0.0) == 7
    assert backoff.delay(1, ApiError(429, {}, retry_after_s=61), lambda: 0.0) is None
    assert backoff.delay(1, ApiError(422, {"title": "No face"}), lambda: 0.0) is None
    assert backoff.delay(1, ApiError(500, {}), lambda: 0.0) is None


def test_client_commands_say_how_they_exit() -> None:
    for command in ("enrol", "identify", "verify", "export", "withdraw", "erase", "checkout"):
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        assert "Exit status" in shown and "3 the server could not be reached" in shown
    shown = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"}).stdout
    assert "130 interrupted" in shown and "state file" in shown


def test_a_checkout_cut_short_says_how_to_retry_without_paying_twice(
    network: Network,
    front: Front,
    served: tuple[Platform, TestClient],
    lfw: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACEKEY_DEVICE_ID", network.device_id)
    monkeypatch.setenv("FACEKEY_DEVICE_SECRET", network.secret)
    image = lfw / "Aaron_Sorkin_0002.jpg"
    front.script(["cut"])  # the server decided, the answer was lost on the way
    status, _, err = pay(network, image)
    line = error_line(err)
    assert status == EXIT_UNAVAILABLE and "dropped the connection" in line
    key = line.split("--idempotency-key ", 1)[1].split(":", 1)[0]
    answer = json.loads(pay(network, image, "--idempotency-key", key)[1])
    assert [a for _, _, a in front.log] == ["cut", "forward"]
    with served[0].database.session() as session:
        ledger = session.scalars(
            select(Authorization).where(Authorization.device_id == network.device_id)
        ).all()
    assert [row.id for row in ledger] == [answer["authorization_id"]]  # one, the cut one
